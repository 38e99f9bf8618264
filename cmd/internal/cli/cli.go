// Package cli holds what both binaries' command lines share: logging setup,
// strict YAML config loading with ${ENV} expansion, version, and the
// certificate generation command. It returns plain values; the binaries wire
// them into edge.Config and relay.Config.
package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.yaml.in/yaml/v3"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3".
var Version = "dev"

// Flag names shared by both binaries.
const (
	FlagConfig    = "config"
	FlagLogFormat = "log-format"
	FlagLogLevel  = "log-level"
)

// NewLogger builds the process logger: "json" for production (one object per
// line, for log shippers), "console" for a human at a terminal.
func NewLogger(format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	var cfg zap.Config
	switch format {
	case "json", "":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "ts"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil // never drop request logs
	return cfg.Build()
}

// LoadYAML decodes the file at path into v, rejecting unknown keys so that a
// typo in a config is an error instead of a silently ignored setting.
func LoadYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Decode reads the first document only: whatever follows a "---"
	// would be ignored, unknown keys and all.
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: a config is one YAML document; this file has another after a \"---\" line", path)
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ExpandSecret resolves ${NAME} references in a secret from the environment,
// so keys never have to be written into config files. A reference to an
// unset or empty variable is an error naming the variable (never the value).
func ExpandSecret(s string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	if strings.TrimSpace(out) == "" {
		return "", errors.New("secret is empty")
	}
	return out, nil
}

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
