package edgecmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/cmd/internal/cli"
	edgeenrol "github.com/strait/strait/edge/enrol"
)

// joinCommand enrols this edge with a relay from a join token.
func joinCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "join",
		Usage:     "enrol this edge with the relay in a join token (from `strait-relay init`) and write edge.yaml",
		ArgsUsage: "TOKEN|@FILE",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "dir", Value: "/etc/strait", Usage: "where edge.yaml and the certificates go"},
			&ucli.StringFlag{Name: "data-dir", Value: "/var/lib/strait", Usage: "where client keys and usage are stored"},
			&ucli.StringFlag{Name: "name", Usage: "this edge's name at the relay (default: the host name)"},
			&ucli.StringFlag{Name: "listen", Value: ":443", Usage: "public HTTPS address for SDKs"},
			&ucli.StringFlag{Name: "front-cert", Usage: "public HTTPS certificate (PEM), e.g. from Let's Encrypt"},
			&ucli.StringFlag{Name: "front-key", Usage: "its private key"},
			&ucli.StringSliceFlag{Name: "front-dns", Usage: "DNS name for a certificate from a CA of this edge's own (repeatable)"},
			&ucli.StringSliceFlag{Name: "front-ip", Usage: "IP address for that certificate (repeatable)"},
			&ucli.StringSliceFlag{Name: "acme-domain", Usage: "get the public certificate from Let's Encrypt for this name (repeatable; the edge must be reachable on 443 under it)"},
			&ucli.StringFlag{Name: "acme-email", Usage: "ACME account contact for expiry warnings"},
			&ucli.StringFlag{Name: "admin-listen", Value: "127.0.0.1:9464", Usage: "metrics and health address (keep it private)"},
			&ucli.BoolFlag{Name: "force", Usage: "join again over an existing edge.yaml"},
			&ucli.BoolFlag{Name: "if-missing", Usage: "do nothing, successfully, when edge.yaml exists (containers that join on every start)"},
		},
		Action: func(c *ucli.Context) error {
			if existing := filepath.Join(c.String("dir"), "edge.yaml"); c.Bool("if-missing") {
				if _, err := os.Stat(existing); err == nil {
					fmt.Fprintf(c.App.Writer, "%s exists: nothing to do\n", existing)
					return nil
				}
			}
			if c.NArg() != 1 {
				return errors.New("usage: strait-edge join TOKEN")
			}
			ips, err := cli.ParseIPs(c.StringSlice("front-ip"))
			if err != nil {
				return err
			}
			token := c.Args().First()
			if file, ok := strings.CutPrefix(token, "@"); ok {
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				token = string(b)
			}
			ctx, cancel := context.WithTimeout(c.Context, time.Minute)
			defer cancel()
			res, err := edgeenrol.Join(ctx, edgeenrol.Options{Token: token, Dir: c.String("dir"),
				DataDir: c.String("data-dir"), Name: c.String("name"), Listen: c.String("listen"), AdminListen: c.String("admin-listen"),
				FrontCert: c.String("front-cert"), FrontKey: c.String("front-key"),
				FrontDNS: c.StringSlice("front-dns"), FrontIPs: ips, Force: c.Bool("force"),
				ACMEDomains: c.StringSlice("acme-domain"), ACMEEmail: c.String("acme-email")})
			if err != nil {
				return err
			}
			w := c.App.Writer
			fmt.Fprintf(w, "enrolled with relay %s (edge certificate %s)\nconfig: %s\n\nstart the edge:  strait-edge run --config %s   (or: systemctl enable --now strait-edge)\n\n",
				res.Relay, res.Fingerprint[:16], res.Config, res.Config)
			fmt.Fprintf(w, "give to applications (the key is shown once):\n  base_url: %s\n  api_key:  %s\n", res.BaseURL, res.ClientKey)
			if res.FrontCA != "" {
				fmt.Fprintf(w, "\nthe HTTPS certificate is from this edge's own CA; clients trust it with\n"+
					"  SSL_CERT_FILE=%[1]s (Python openai/anthropic, curl), NODE_EXTRA_CA_CERTS=%[1]s (Node),\n"+
					"  or pass --front-cert/--front-key with a public certificate\n", res.FrontCA)
			}
			return nil
		},
	}
}

// certMetrics exports the expiry of the edge's certificates.
func certMetrics(reg *admin.Registry, f *File, front, tunnelCert *certs.KeyPair) {
	if front != nil { // nil with ACME
		admin.CertExpiry(reg, "edge_front", front)
	}
	admin.CertExpiry(reg, "edge_tunnel", tunnelCert)
	admin.CAExpiry(reg, "tunnel_ca", f.Tunnel.CA)
}

// startRenewer renews the tunnel certificate through the relays before it
// expires; the returned stop waits for it to end.
func (s *Server) startRenewer() (stop func()) {
	f := s.file
	roots, err := certs.LoadPool(f.Tunnel.CA)
	if err != nil {
		s.log.Warn("tunnel certificate renewal off", zap.Error(err))
		return func() {}
	}
	r := &edgeenrol.Renewer{CertFile: f.Tunnel.Cert, KeyFile: f.Tunnel.Key, KeyPair: s.tunnelCert, Log: s.log}
	for _, rel := range f.Tunnel.Relays {
		r.Relays = append(r.Relays, edgeenrol.Target{Addr: rel.Address, TLS: certs.ClientConfig(s.tunnelCert, roots, rel.serverName())})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	return func() { cancel(); <-done }
}
