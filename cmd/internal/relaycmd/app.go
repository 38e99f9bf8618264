package relaycmd

import (
	"context"
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
			return check(c.App.Writer, c.String(cli.FlagConfig), net.ListenConfig{})
		},
	}
}

// check loads the config at path, builds the relay on throwaway sockets
// bound through lc (see checkSockets) and describes it to w.
func check(w io.Writer, path string, lc net.ListenConfig) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	socks, err := checkSockets(lc, f)
	if err != nil {
		return err
	}
	srv, err := Build(f, socks, zap.NewNop())
	if err != nil {
		socks.close()
		return err
	}
	defer srv.closeListeners()
	describe(w, f, srv)
	return nil
}

// checkSockets binds throwaway loopback sockets for the transports the
// config enables, so check validates TLS without taking the real ports. A
// socket it cannot bind is an error: left nil, Build would bind the
// configured address instead.
func checkSockets(lc net.ListenConfig, f *File) (s Sockets, err error) {
	const loopback = "127.0.0.1:0"
	ctx := context.Background()
	defer func() {
		if err != nil {
			s.close()
			err = fmt.Errorf("check: a loopback socket in place of %w", err)
		}
	}()
	if f.Listen != "" {
		if s.TCP, err = lc.Listen(ctx, "tcp", loopback); err != nil {
			return s, fmt.Errorf("listen: %w", err)
		}
	}
	if f.quicAddr() != "" {
		var pc net.PacketConn
		if pc, err = lc.ListenPacket(ctx, "udp", loopback); err != nil {
			return s, fmt.Errorf("listen_quic: %w", err)
		}
		s.UDP = pc.(*net.UDPConn) // "udp" always makes one
	}
	if f.AdminListen != "" {
		if s.Admin, err = lc.Listen(ctx, "tcp", loopback); err != nil {
			return s, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return s, nil
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
