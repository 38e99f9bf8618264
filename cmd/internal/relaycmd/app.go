package relaycmd

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/scripts/fakeprovider"
)

// App is the strait-relay command line.
func App() *ucli.App {
	return &ucli.App{
		Name:  "strait-relay",
		Usage: "overseas end of the Strait tunnel: accepts edges, calls model APIs",
		Flags: cli.CommonFlags(),
		Commands: []*ucli.Command{
			runCommand(), checkCommand(), initCommand(), edgesCommand(), cli.CertsCommand(), fakeProviderCommand(), cli.VersionCommand("strait-relay"),
		},
	}
}

func runCommand() *ucli.Command {
	return cli.RunCommand("relay", "serve tunnels from edges", "STRAIT_RELAY_CONFIG",
		func(path string, log *zap.Logger) (cli.Server, error) {
			f, err := Load(path)
			if err != nil {
				return nil, err
			}
			return Build(f, Sockets{}, log)
		})
}

func checkCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "check",
		Usage: "validate a config and print what the relay would do",
		Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_RELAY_CONFIG")},
		Action: func(c *ucli.Context) error {
			f, err := Load(c.String(cli.FlagConfig))
			if err != nil {
				return err
			}
			srv, err := Build(f, checkSockets(f), zap.NewNop())
			if err != nil {
				return err
			}
			defer srv.closeListeners()
			describe(c.App.Writer, f, srv)
			return nil
		},
	}
}

// checkSockets binds throwaway loopback sockets for the transports the
// config enables, so check validates TLS without taking the real ports.
func checkSockets(f *File) Sockets {
	var s Sockets
	if f.Listen != "" {
		s.TCP, _ = net.Listen("tcp", "127.0.0.1:0")
	}
	if f.quicAddr() != "" {
		s.UDP, _ = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	}
	if f.AdminListen != "" {
		s.Admin, _ = net.Listen("tcp", "127.0.0.1:0")
	}
	return s
}

func describe(w io.Writer, f *File, srv *Server) {
	fmt.Fprintf(w, "config OK\n")
	if f.Listen != "" {
		fmt.Fprintf(w, "tunnel: listen tcp %s (WebSocket over TLS 1.3, client certificates from %s)\n", f.Listen, f.TLS.ClientCA)
	}
	switch {
	case f.quicBesideWS():
		fmt.Fprintf(w, "tunnel: listen udp %s (QUIC on the WebSocket port, TLS 1.3, client certificates from %s; listen_quic: off to disable)\n", f.Listen, f.TLS.ClientCA)
	case f.quicAddr() != "":
		fmt.Fprintf(w, "tunnel: listen udp %s (QUIC, TLS 1.3, client certificates from %s)\n", f.quicAddr(), f.TLS.ClientCA)
	}
	if n := len(f.TLS.RevokedEdges); n > 0 {
		fmt.Fprintf(w, "tunnel: %d edge certificate(s) revoked: %s\n", n, strings.Join(f.TLS.RevokedEdges, ", "))
	}
	if f.AdminListen != "" {
		fmt.Fprintf(w, "admin:  http://%s (/metrics, /healthz, /readyz)\n", f.AdminListen)
	}
	describeEnrol(w, f)
	reg := srv.Relay.Registry()
	ps := reg.Providers()
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	for _, p := range ps {
		fmt.Fprintf(w, "provider %-12s kind=%-17s base_url=%s keys=%v\n", p.Name, p.Kind, p.BaseURL(), p.Keys())
	}
	for _, r := range f.Routes {
		to := r.Provider
		if r.UpstreamModel != "" {
			to += " as " + r.UpstreamModel
		}
		for _, fb := range r.Fallbacks {
			to += ", then " + fb.Provider
			if fb.Model != "" {
				to += " as " + fb.Model
			}
		}
		fmt.Fprintf(w, "route  model %-20s -> %s\n", r.Model, to)
	}
	for _, fam := range llmapi.Families {
		if name := reg.DefaultFor(string(fam)); name != "" {
			fmt.Fprintf(w, "route  %-9s requests -> %s\n", fam, name)
		} else {
			fmt.Fprintf(w, "route  %-9s requests -> (none: answered with 404)\n", fam)
		}
	}
}

func fakeProviderCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "fake-provider",
		Usage: "serve a local fake of the OpenAI, Anthropic and Gemini APIs (tests, demos, benchmarks)",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Value: "127.0.0.1:9900"},
			&ucli.IntFlag{Name: "tokens", Value: 8, Usage: "tokens per completion"},
			&ucli.DurationFlag{Name: "interval", Value: 20 * time.Millisecond, Usage: "delay between streamed tokens"},
			&ucli.IntFlag{Name: "fail", Usage: "answer every request with this HTTP status (401, 429, 500, 529)"},
		},
		Action: func(c *ucli.Context) error {
			ctx, stop := cli.SignalContext()
			defer stop()
			cfg := fakeprovider.Config{Tokens: c.Int("tokens"), Interval: c.Duration("interval"),
				Fault: fakeprovider.Fault{Status: c.Int("fail")}}
			return fakeprovider.ListenAndServe(ctx, c.String("listen"), cfg, func(a net.Addr) {
				fmt.Fprintf(c.App.Writer, "fake provider listening on http://%s\n", a)
			})
		},
	}
}
