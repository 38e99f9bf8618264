package edgecmd

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
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
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: cli.FlagConfig, Aliases: []string{"c"}, EnvVars: []string{"STRAIT_EDGE_CONFIG"}, Usage: "path to the edge's YAML config (standalone)"},
			&ucli.StringFlag{Name: "admin", Usage: "ask a running edge instead: its admin address, e.g. http://127.0.0.1:9464 (runs from the edge's process and network)"},
			&ucli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
			&ucli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "bound on each step"},
			&ucli.IntFlag{Name: "probes", Value: 100, Usage: "round trips to time per relay"},
			&ucli.BoolFlag{Name: "providers", Usage: "also time the first token of one tiny request per API family through the running edge (costs a few tokens)"},
			&ucli.StringFlag{Name: "key", EnvVars: []string{"STRAIT_DOCTOR_KEY"}, Usage: "client key for --providers"},
			&ucli.StringFlag{Name: "edge-url", Usage: "the running edge for --providers (default: https://127.0.0.1 on the listen port)"},
			&ucli.StringSliceFlag{Name: "model", Usage: "family=model for --providers (repeatable; default: openai, anthropic and gemini with small models)"},
		},
		Action: func(c *ucli.Context) error {
			ctx, stop := cli.SignalContext()
			defer stop()
			if a := c.String("admin"); a != "" {
				rep, err := fromAdmin(ctx, a, c.Int("probes"))
				if err != nil {
					return err
				}
				return printDoctorReport(c, rep)
			}
			if c.String(cli.FlagConfig) == "" {
				return errors.New("doctor needs --config (standalone) or --admin (a running edge)")
			}
			f, err := Load(c.String(cli.FlagConfig))
			if err != nil {
				return err
			}
			cfg, err := f.doctorConfig()
			if err != nil {
				return err
			}
			cfg.Timeout, cfg.Probes = c.Duration("timeout"), c.Int("probes")
			rep := doctor.Run(ctx, cfg)
			if c.Bool("providers") {
				if rep.Providers, err = f.firstTokens(ctx, c); err != nil {
					return err
				}
			}
			return printDoctorReport(c, rep)
		},
	}
}

// printDoctorReport prints in plain words or JSON; an unhealthy report exits 1.
func printDoctorReport(c *ucli.Context, rep doctor.Report) error {
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
}

// doctorPath is the admin endpoint that runs the doctor in the edge.
const doctorPath = "/doctor"

// doctorHandler runs the doctor from the edge's own process (its network
// namespace, its files) with the config it started with: GET /doctor
// (?probes=N) answers the JSON report.
func (s *Server) doctorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg, err := s.file.doctorConfig()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if n, err := strconv.Atoi(r.URL.Query().Get("probes")); err == nil && n > 0 && n <= 1000 {
			cfg.Probes = n
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doctor.Run(r.Context(), cfg))
	})
}

// fromAdmin asks a running edge's admin listener for a report.
func fromAdmin(ctx context.Context, admin string, probes int) (doctor.Report, error) {
	url := strings.TrimRight(admin, "/") + doctorPath + "?probes=" + strconv.Itoa(probes)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return doctor.Report{}, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return doctor.Report{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return doctor.Report{}, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var rep doctor.Report
	return rep, json.NewDecoder(resp.Body).Decode(&rep)
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
			if shape := f.Tunnel.QUICFEC.shape(); shape.Enabled() {
				qf, err := quictun.NewDialer(r.quicAddress(), tc, quictun.Config{FEC: shape})
				if err != nil {
					return doctor.Config{}, err
				}
				dr.DialQUICFEC = qf.Dial
			}
		}
		cfg.Relays = append(cfg.Relays, dr)
	}
	return cfg, nil
}

func pathStats(s tunnel.Session) doctor.PathStats {
	if c, ok := tunnel.SenderStateOf(s); ok {
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
