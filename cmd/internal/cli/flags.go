package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"sync"
	"syscall"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
)

// CommonFlags are the flags every command of both binaries accepts.
func CommonFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: FlagLogFormat, Value: "json", Usage: "log format: json (production) or console (development)", EnvVars: []string{"STRAIT_LOG_FORMAT"}},
		&ucli.StringFlag{Name: FlagLogLevel, Value: "info", Usage: "log level: debug, info, warn, error", EnvVars: []string{"STRAIT_LOG_LEVEL"}},
	}
}

// ConfigFlag is the required --config flag.
func ConfigFlag(envVar string) ucli.Flag {
	return &ucli.StringFlag{Name: FlagConfig, Aliases: []string{"c"}, Required: true, Usage: "path to the YAML config", EnvVars: []string{envVar}}
}

// Logger builds the logger from the common flags.
func Logger(c *ucli.Context) (*zap.Logger, error) {
	return NewLogger(c.String(FlagLogFormat), c.String(FlagLogLevel))
}

// VersionCommand prints the version.
func VersionCommand(binary string) *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *ucli.Context) error {
			_, err := fmt.Fprintf(c.App.Writer, "%s %s\n", binary, Version)
			return err
		},
	}
}

// CertsCommand generates a CA, the relay's server certificate, the edge's
// client certificate and, optionally, the edge's public HTTPS certificate.
func CertsCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "certs",
		Usage: "generate the tunnel CA, relay server certificate and edge client certificate",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "dir", Value: "certs", Usage: "output directory"},
			&ucli.StringFlag{Name: "algorithm", Value: string(certs.ECDSAP256), Usage: "ecdsa-p256 or ed25519"},
			&ucli.StringSliceFlag{Name: "relay-dns", Usage: "DNS name of the relay (repeatable)"},
			&ucli.StringSliceFlag{Name: "relay-ip", Usage: "IP address of the relay (repeatable)"},
			&ucli.StringFlag{Name: "edge-name", Value: "strait-edge", Usage: "common name of the edge certificate"},
			&ucli.StringSliceFlag{Name: "front-dns", Usage: "DNS name for a self-signed edge HTTPS certificate (repeatable; for testing)"},
			&ucli.StringSliceFlag{Name: "front-ip", Usage: "IP address for the edge HTTPS certificate (repeatable)"},
			&ucli.BoolFlag{Name: "force", Usage: "overwrite existing files"},
		},
		Action: func(c *ucli.Context) error {
			relayIPs, err := parseIPs(c.StringSlice("relay-ip"))
			if err != nil {
				return err
			}
			frontIPs, err := parseIPs(c.StringSlice("front-ip"))
			if err != nil {
				return err
			}
			files, err := certs.Generate(certs.GenerateOptions{
				Dir: c.String("dir"), Algorithm: certs.Algorithm(c.String("algorithm")),
				RelayDNS: c.StringSlice("relay-dns"), RelayIPs: relayIPs, EdgeName: c.String("edge-name"),
				FrontDNS: c.StringSlice("front-dns"), FrontIPs: frontIPs, Force: c.Bool("force"),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "CA:    %s (key %s: keep it offline)\nrelay: %s %s\nedge:  %s %s\n",
				files.CACert, files.CAKey, files.RelayCert, files.RelayKey, files.EdgeCert, files.EdgeKey)
			if files.FrontCert != "" {
				fmt.Fprintf(c.App.Writer, "front: %s %s (clients trust %s)\n", files.FrontCert, files.FrontKey, files.FrontCA)
			}
			return nil
		},
	}
}

func parseIPs(ss []string) ([]net.IP, error) {
	var out []net.IP
	for _, s := range ss {
		for _, part := range strings.Split(s, ",") {
			ip := net.ParseIP(strings.TrimSpace(part))
			if ip == nil {
				return nil, fmt.Errorf("not an IP address: %q", part)
			}
			out = append(out, ip)
		}
	}
	return out, nil
}

// Server is what a run command serves until its context ends.
type Server interface {
	Serve(ctx context.Context) error
	Addr() net.Addr
}

// Reloader is a server that can apply a changed config file while it runs.
// Reload must either apply the whole new config or, on error, nothing.
type Reloader interface {
	Reload(configPath string) error
}

// WarnUnapplied logs, by their YAML keys, the top-level settings that
// differ between started and reloaded, two values of one config struct
// from which the caller has cleared what its Reload applies: the changes a
// reload leaves for the next restart. binary is "edge" or "relay".
func WarnUnapplied(log *zap.Logger, binary string, started, reloaded any) {
	if changed := unapplied(started, reloaded); len(changed) > 0 {
		log.Warn("settings differ from the config the "+binary+" started with; they take effect on restart",
			zap.Strings("settings", changed))
	}
}

func unapplied(started, reloaded any) []string {
	a, b := reflect.ValueOf(started), reflect.ValueOf(reloaded)
	var out []string
	for i := range a.NumField() {
		f := a.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, name)
		}
	}
	return out
}

// CatchHangups makes SIGHUP, whose default action ends the process, a
// value on the returned channel (one pending at most: reloads coalesce);
// signal.Stop undoes it.
func CatchHangups() chan os.Signal {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup
}

// ReloadOnHangup reloads the config at path on every SIGHUP caught on hup
// (CatchHangups) until the returned stop is called; stop waits for a
// reload in progress and stops catching. A rejected config is logged with
// its reason and the running one stays.
func ReloadOnHangup(r Reloader, path string, log *zap.Logger, hup chan os.Signal) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if err := r.Reload(path); err != nil {
				log.Warn("config reload rejected; the running config stays", zap.String("path", path), zap.Error(err))
				continue
			}
			log.Info("config reloaded", zap.String("path", path))
		}
	})
	return func() {
		signal.Stop(hup)
		close(done)
		wg.Wait()
	}
}

// RunCommand is the `run` command of a binary: build the logger, load the
// config at --config through start, serve until SIGINT/SIGTERM, then drain.
func RunCommand(binary, usage, configEnv string, start func(configPath string, log *zap.Logger) (Server, error)) *ucli.Command {
	return &ucli.Command{
		Name:  "run",
		Usage: usage,
		Flags: []ucli.Flag{ConfigFlag(configEnv)},
		Action: func(c *ucli.Context) error {
			log, err := Logger(c)
			if err != nil {
				return err
			}
			defer log.Sync()
			// quictun measures and logs UDP buffer sizes itself; quic-go's own
			// warning goes to the standard logger and misreads Linux's doubled
			// sizes.
			if os.Getenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING") == "" {
				_ = os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
			}
			// The signal handler goes in before start: start dials the
			// tunnel, and a SIGTERM during that (a relay that refuses this
			// edge keeps it retrying) must stop the process cleanly, not
			// kill it with the default action.
			ctx, stop := SignalContext()
			defer stop()
			// Likewise SIGHUP (systemctl reload right after start): caught
			// from now on, and a reload it asked for runs once started.
			hup := CatchHangups()
			defer signal.Stop(hup)
			stopTuning, tuned := HeapHeadroom(Headroom)
			defer stopTuning()
			srv, err := start(c.String(FlagConfig), log)
			if err != nil {
				return err
			}
			gc := "GOGC from the environment"
			if tuned {
				gc = fmt.Sprintf("GOGC 100, at least %d MiB between collections", Headroom>>20)
			}
			fields := []zap.Field{zap.Stringer("addr", srv.Addr()), zap.String("version", Version), zap.String("gc", gc)}
			if more, ok := srv.(interface{ Addrs() []zap.Field }); ok {
				fields = append(fields, more.Addrs()...)
			}
			log.Info(binary+" listening", fields...)
			if r, ok := srv.(Reloader); ok {
				stopReload := ReloadOnHangup(r, c.String(FlagConfig), log, hup)
				defer stopReload()
			}
			err = srv.Serve(ctx)
			log.Info(binary + " stopped")
			return err
		},
	}
}
