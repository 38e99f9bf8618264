package edgecmd

import (
	"fmt"
	"io"
	"net"
	"net/url"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/strait/strait/cmd/internal/cli"
)

// App is the strait-edge command line.
func App() *ucli.App {
	return &ucli.App{
		Name:  "strait-edge",
		Usage: "domestic end of the Strait tunnel: serves official SDKs over HTTPS",
		Flags: cli.CommonFlags(),
		Commands: []*ucli.Command{runCommand(), checkCommand(), joinCommand(), doctorCommand(), keysCommand(), usageCommand(), cli.CertsCommand(),
			cli.VersionCommand("strait-edge")},
	}
}

func runCommand() *ucli.Command {
	return cli.RunCommand("edge", "serve clients and keep tunnels to the relays", "STRAIT_EDGE_CONFIG",
		func(path string, log *zap.Logger) (cli.Server, error) {
			f, err := Load(path)
			if err != nil {
				return nil, err
			}
			return Build(f, nil, log)
		})
}

func checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "check",
		Usage: "validate a config and print what the edge would do",
		Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG")},
		Action: func(c *ucli.Context) error {
			f, err := Load(c.String(cli.FlagConfig))
			if err != nil {
				return err
			}
			keys, err := f.Keys()
			if err != nil {
				return err
			}
			if _, _, err := f.dialers(nil, nil, zap.NewNop()); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ln.Close()
			describe(c.App.Writer, f, keys.Len())
			return nil
		},
	}
}

func describe(w io.Writer, f *File, nkeys int) {
	cert := f.TLS.Cert
	if f.TLS.ACME.enabled() {
		cert = fmt.Sprintf("by ACME for %v", f.TLS.ACME.Domains)
	}
	fmt.Fprintf(w, "config OK\nlisten: https://%s (certificate %s)\n", f.Listen, cert)
	for _, r := range f.Tunnel.Relays {
		fmt.Fprintf(w, "relay:  %s (transport %s, QUIC at %s, server name %q, mutual TLS 1.3, CA %s)\n",
			r.Address, r.transport(), r.quicAddress(), r.serverName(), f.Tunnel.CA)
	}
	fmt.Fprintf(w, "client keys: %d (%d in the config)\n", nkeys, len(f.ClientKeys))
	if r := f.Store.Redis; r != nil {
		addr := r.URL
		if addr == "" {
			addr = fmt.Sprint(r.Addrs)
		}
		if u, err := url.Parse(r.URL); err == nil && u.User != nil {
			addr = u.Redacted()
		}
		policy := r.OnFailure
		if policy == "" {
			policy = "fail_open"
		}
		fmt.Fprintf(w, "store:  Redis %s (limits, quotas, usage and CLI keys shared by every edge on it; %s when it is away)\n", addr, policy)
	} else if f.DataDir != "" {
		fmt.Fprintf(w, "data:   %s (keys file %s, usage store %s)\n", f.DataDir, f.KeysPath(), f.UsagePath())
	} else {
		fmt.Fprintf(w, "data:   none (usage and quotas in memory only; no CLI-managed keys)\n")
	}
	if a := f.adminListen(); a != "" {
		fmt.Fprintf(w, "admin:  http://%s (/metrics, /healthz, /readyz, /usage)\n", a)
	}
	if f.Audit.Path != "" {
		fmt.Fprintf(w, "audit:  %s (bodies recorded: %v)\n", f.Audit.Path, f.Audit.Bodies)
	}
	fmt.Fprintf(w, "prices: %d model patterns\n", len(f.Prices))
}
