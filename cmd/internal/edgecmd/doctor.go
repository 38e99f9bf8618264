package edgecmd

import (
	"encoding/json"
	"fmt"
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
