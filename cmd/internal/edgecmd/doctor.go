package edgecmd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v2"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge/doctor"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/wstun"
)

// doctorCommand examines the path to every relay in the config.
func doctorCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "doctor",
		Usage: "examine the border: reach each relay over TCP and UDP, check TLS and certificates, measure round trip, jitter, loss, clock skew and throughput, and say what to change",
		Flags: []ucli.Flag{cli.ConfigFlag("STRAIT_EDGE_CONFIG"),
			&ucli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&ucli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "bound on each step"},
			&ucli.IntFlag{Name: "probes", Value: 100, Usage: "round trips to time per relay"},
			&ucli.BoolFlag{Name: "providers", Usage: "also time the first token of one tiny request per API family through the running edge (costs a few tokens)"},
			&ucli.StringFlag{Name: "key", EnvVars: []string{"STRAIT_DOCTOR_KEY"}, Usage: "client key for --providers"},
			&ucli.StringFlag{Name: "edge-url", Usage: "the running edge for --providers (default: https://127.0.0.1 on the listen port)"},
			&ucli.StringSliceFlag{Name: "model", Usage: "family=model for --providers (repeatable; default: openai, anthropic and gemini with small models)"},
		},
		Action: func(c *ucli.Context) error {
			f, err := Load(c.String(cli.FlagConfig))
			if err != nil {
				return err
			}
			cfg, err := f.doctorConfig()
			if err != nil {
				return err
			}
			cfg.Timeout, cfg.Probes = c.Duration("timeout"), c.Int("probes")
			ctx, stop := cli.SignalContext()
			defer stop()
			rep := doctor.Run(ctx, cfg)
			if c.Bool("providers") {
				if rep.Providers, err = f.firstTokens(ctx, c); err != nil {
					return err
				}
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				rep.WriteText(c.App.Writer)
			}
			if !rep.OK {
				return ucli.Exit("", 1)
			}
			return nil
		},
	}
}

// doctorConfig builds one dialer per transport for each relay, whatever
// the relay's configured transport, so the report covers both paths.
func (f *File) doctorConfig() (doctor.Config, error) {
	kp, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return doctor.Config{}, fmt.Errorf("tunnel: %w", err)
	}
	roots, err := certs.LoadPool(f.Tunnel.CA)
	if err != nil {
		return doctor.Config{}, fmt.Errorf("tunnel.ca: %w", err)
	}
	cfg := doctor.Config{EdgeCert: kp.Certificate(), PathStats: pathStats}
	for _, r := range f.Tunnel.Relays {
		tc := certs.ClientConfig(kp, roots, r.serverName())
		ws, err := wstun.NewDialer(r.Address, tc, wstun.Config{TCPCongestion: f.Tunnel.TCPCongestion, Compression: wstun.CompressionOff})
		if err != nil {
			return doctor.Config{}, err
		}
		dr := doctor.Relay{Address: r.Address, QUICAddress: r.quicAddress(), TLS: tc, DialWS: ws.Dial,
			DownloadPath: wstun.DiagDownloadPath}
		if r.transport() != "ws" {
			q, err := quictun.NewDialer(r.quicAddress(), tc, quictun.Config{})
			if err != nil {
				return doctor.Config{}, err
			}
			dr.DialQUIC = q.Dial
		}
		cfg.Relays = append(cfg.Relays, dr)
	}
	return cfg, nil
}

func pathStats(s tunnel.Session) doctor.PathStats {
	if c, ok := quictun.CongestionOf(s); ok {
		return doctor.PathStats{Congestion: "NewReno (quic-go)", Loss: c.LossRate(), LossKnown: c.PacketsSent > 0, PacketsSent: c.PacketsSent}
	}
	if si, ok := wstun.SocketInfoOf(s); ok {
		return doctor.PathStats{Congestion: si.Congestion}
	}
	return doctor.PathStats{}
}

// firstTokens runs doctor.FirstTokens against the running edge.
func (f *File) firstTokens(ctx context.Context, c *ucli.Context) ([]doctor.ProviderCheck, error) {
	if c.String("key") == "" {
		return nil, errors.New("--providers needs --key (a client key of this edge)")
	}
	models := doctor.DefaultModels
	if ms := c.StringSlice("model"); len(ms) > 0 {
		models = map[string]string{}
		for _, m := range ms {
			fam, model, ok := strings.Cut(m, "=")
			if !ok {
				return nil, fmt.Errorf("--model %q: want family=model", m)
			}
			models[fam] = model
		}
	}
	url := c.String("edge-url")
	if url == "" {
		_, port, err := net.SplitHostPort(f.Listen)
		if err != nil {
			return nil, err
		}
		url = "https://" + net.JoinHostPort("127.0.0.1", port)
	}
	// The edge's own listener on loopback: its name and CA do not matter
	// here, and a public certificate would not carry 127.0.0.1.
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: strings.HasPrefix(url, "https://127.0.0.1:")}}
	defer tr.CloseIdleConnections()
	return doctor.FirstTokens(ctx, &http.Client{Transport: tr}, url, c.String("key"), models), nil
}
