package relaycmd

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/cmd/internal/cli"
	relayenrol "github.com/strait/strait/relay/enrol"
)

// EnrolFile configures enrolment of edges with join tokens.
type EnrolFile struct {
	// CAKey is the tunnel CA's private key (its certificate is
	// tls.client_ca): with it the relay signs the certificates of edges
	// that present a valid join token on the tunnel's TLS port.
	CAKey string `yaml:"ca_key"`
	// Store is the JSON file of join secrets (hashed) and enrolled edges.
	// Edges revoked in it are refused from the next handshake on, without
	// a reload.
	Store string `yaml:"store"`
	// Advertise are the host:port addresses join tokens send edges to.
	Advertise []string `yaml:"advertise"`
	// TokenTTL is how long `edges token` tokens are valid (zero: 24h);
	// CertValidity how long enrolled edges' certificates are (zero: 1 year).
	TokenTTL     time.Duration `yaml:"token_ttl"`
	CertValidity time.Duration `yaml:"cert_validity"`
}

func (e EnrolFile) validate() error {
	if e.CAKey != "" && e.Store == "" {
		return errors.New("enrol.store: required with enrol.ca_key")
	}
	for _, a := range e.Advertise {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("enrol.advertise %q: want host:port", a)
		}
	}
	return nil
}

// setupEnrol adds the enrolment store's revocations to the tunnel's TLS
// check and, with the CA key, the enrolment endpoint.
func (s *Server) setupEnrol(f *File, tc *tls.Config, log *zap.Logger) error {
	if f.Enrol.Store == "" {
		return nil
	}
	store := relayenrol.OpenStore(f.Enrol.Store)
	rev, err := relayenrol.NewRevocations(store, log)
	if err != nil {
		return fmt.Errorf("enrol.store: %w", err)
	}
	fromConfig := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if fromConfig != nil {
			if err := fromConfig(cs); err != nil {
				return err
			}
		}
		return rev.VerifyConnection(cs)
	}
	if f.Enrol.CAKey == "" {
		return nil
	}
	ca, err := certs.LoadCA(f.TLS.ClientCA, f.Enrol.CAKey)
	if err != nil {
		return fmt.Errorf("enrol.ca_key: %w", err)
	}
	s.enrol = &relayenrol.Handler{CA: ca, Store: store, Validity: f.Enrol.CertValidity, Log: log.Named("enrol")}
	return nil
}

// enrolHandler is the endpoint for the WebSocket listener, or nil.
func (s *Server) enrolHandler() http.Handler {
	if s.enrol == nil {
		return nil
	}
	return s.enrol
}

func initCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "init",
		Usage: "set this relay up: CA, relay certificate, relay.yaml with providers from the environment, and a join token for the first edge",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "dir", Value: "/etc/strait", Usage: "where the CA, certificates, relay.yaml and relay.env go"},
			&ucli.StringFlag{Name: "data-dir", Value: "/var/lib/strait", Usage: "where the enrolment store goes (written by the running relay)"},
			&ucli.StringSliceFlag{Name: "addr", Usage: "public name or IP of this relay, optionally :port (repeatable; default: detected)"},
			&ucli.StringFlag{Name: "listen", Value: ":443", Usage: "tunnel address: TCP (WebSocket) and UDP (QUIC)"},
			&ucli.DurationFlag{Name: "token-ttl", Value: relayenrol.DefaultTokenTTL, Usage: "how long the join token is valid"},
			&ucli.StringFlag{Name: "admin-listen", Value: "127.0.0.1:9465", Usage: "metrics and health address (keep it private)"},
			&ucli.StringFlag{Name: "token-file", Usage: "also write the join token to this file (mode 0600), for `strait-edge join @FILE` in scripts and compose"},
			&ucli.BoolFlag{Name: "force", Usage: "rewrite an existing relay.yaml (the CA is kept)"},
			&ucli.BoolFlag{Name: "if-missing", Usage: "do nothing, successfully, when relay.yaml exists (containers that run init on every start)"},
		},
		Action: func(c *ucli.Context) error {
			if existing := filepath.Join(c.String("dir"), "relay.yaml"); c.Bool("if-missing") && fileExists(existing) {
				fmt.Fprintf(c.App.Writer, "%s exists: nothing to do\n", existing)
				return nil
			}
			res, err := relayenrol.Init(relayenrol.InitOptions{Dir: c.String("dir"), DataDir: c.String("data-dir"),
				Addrs: c.StringSlice("addr"), Listen: c.String("listen"), AdminListen: c.String("admin-listen"), TokenTTL: c.Duration("token-ttl"), Force: c.Bool("force")})
			if err != nil {
				return err
			}
			w := c.App.Writer
			ca := "created"
			if res.CAReused {
				ca = "kept"
			}
			fmt.Fprintf(w, "CA %s; relay certificate for %v\nconfig:    %s (providers: %v)\nkeys:      %s (mode 0600)\nenrolment: %s\n",
				ca, res.Token.Relays, res.Config, res.Providers, res.EnvFile, res.Store)
			for _, warn := range res.Warnings {
				fmt.Fprintf(w, "warning:   %s\n", warn)
			}
			fmt.Fprintf(w, "\nstart the relay:  strait-relay run --config %s   (or: systemctl enable --now strait-relay)\n", res.Config)
			printToken(c, res.Token)
			if p := c.String("token-file"); p != "" {
				return certs.WriteFile(p, []byte(res.Token.String()+"\n"), 0o600)
			}
			return nil
		},
	}
}

func printToken(c *ucli.Context, tok enrol.Token) {
	fmt.Fprintf(c.App.Writer, "on the edge, valid until %s, once:\n\n  strait-edge join %s\n\n",
		tok.Expires.UTC().Format(time.RFC3339), tok)
}

func edgesCommand() *ucli.Command {
	cfg := []ucli.Flag{cli.ConfigFlag("STRAIT_RELAY_CONFIG")}
	return &ucli.Command{
		Name:  "edges",
		Usage: "make join tokens, list and revoke enrolled edges",
		Subcommands: []*ucli.Command{
			{Name: "token", Usage: "print a one-time join token for another edge",
				Flags:  append(cfg, &ucli.DurationFlag{Name: "ttl", Usage: "how long it is valid (default: enrol.token_ttl, else 24h)"}),
				Action: edgesToken},
			{Name: "list", Usage: "list enrolled edges and join tokens (never the secrets)", Flags: cfg, Action: edgesList},
			{Name: "revoke", Usage: "revoke an edge by name or fingerprint: a running relay refuses it from its next handshake",
				ArgsUsage: "NAME|FINGERPRINT", Flags: cfg, Action: edgesRevoke},
		},
	}
}

func enrolConfig(c *ucli.Context) (*File, *relayenrol.Store, error) {
	f, err := Load(c.String(cli.FlagConfig))
	if err != nil {
		return nil, nil, err
	}
	if f.Enrol.Store == "" {
		return nil, nil, errors.New("enrol.store is not set in the config: enrolment is off")
	}
	return f, relayenrol.OpenStore(f.Enrol.Store), nil
}

func edgesToken(c *ucli.Context) error {
	f, store, err := enrolConfig(c)
	if err != nil {
		return err
	}
	if f.Enrol.CAKey == "" || len(f.Enrol.Advertise) == 0 {
		return errors.New("enrol.ca_key and enrol.advertise are needed to make join tokens")
	}
	ca, err := certs.LoadCA(f.TLS.ClientCA, f.Enrol.CAKey)
	if err != nil {
		return err
	}
	ttl := c.Duration("ttl")
	if ttl <= 0 {
		ttl = f.Enrol.TokenTTL
	}
	if ttl <= 0 {
		ttl = relayenrol.DefaultTokenTTL
	}
	secret, rec, err := store.NewSecret(ttl, time.Now())
	if err != nil {
		return err
	}
	printToken(c, enrol.Token{Relays: f.Enrol.Advertise, CAFingerprint: certs.FullFingerprint(ca.Cert), Secret: secret, Expires: rec.Expires})
	return nil
}

func edgesList(c *ucli.Context) error {
	_, store, err := enrolConfig(c)
	if err != nil {
		return err
	}
	st, err := store.Load()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.App.Writer, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "EDGE\tFINGERPRINT\tENROLLED\tFROM\tCERT EXPIRES\tSTATE")
	for _, e := range st.Edges {
		state := "active"
		if e.RevokedAt != nil {
			state = "revoked " + e.RevokedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Fingerprint[:16], e.EnrolledAt.UTC().Format(time.RFC3339),
			e.Remote, e.NotAfter.UTC().Format("2006-01-02"), state)
	}
	fmt.Fprintln(tw, "\nTOKEN\tCREATED\tEXPIRES\tSTATE")
	now := time.Now()
	for _, t := range st.Tokens {
		state := "unused"
		switch {
		case t.UsedAt != nil:
			state = "used by " + t.UsedBy[:min(16, len(t.UsedBy))]
		case !now.Before(t.Expires):
			state = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.Created.UTC().Format(time.RFC3339), t.Expires.UTC().Format(time.RFC3339), state)
	}
	return tw.Flush()
}

func edgesRevoke(c *ucli.Context) error {
	_, store, err := enrolConfig(c)
	if err != nil {
		return err
	}
	if c.NArg() != 1 {
		return errors.New("usage: strait-relay edges revoke NAME|FINGERPRINT")
	}
	revoked, err := store.Revoke(c.Args().First(), time.Now())
	if err != nil {
		return err
	}
	for _, e := range revoked {
		fmt.Fprintf(c.App.Writer, "revoked %s (%s): refused from its next handshake\n", e.Name, e.Fingerprint[:16])
	}
	fmt.Fprintf(os.Stderr, "sessions already up stay until they reconnect; restart the relay to cut them now\n")
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// describeEnrol is check's line about enrolment.
func describeEnrol(w io.Writer, f *File) {
	switch {
	case f.Enrol.CAKey != "":
		fmt.Fprintf(w, "enrol:  edges join with tokens for %v on the WebSocket port; store %s (revocations read on every handshake)\n",
			f.Enrol.Advertise, f.Enrol.Store)
	case f.Enrol.Store != "":
		fmt.Fprintf(w, "enrol:  off (no enrol.ca_key); revocations from %s read on every handshake\n", f.Enrol.Store)
	}
}
