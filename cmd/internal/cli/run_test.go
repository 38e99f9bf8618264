package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	ucli "github.com/urfave/cli/v2"
	"go.uber.org/zap"
)

// reloadingServer serves until its config was reloaded once.
type reloadingServer struct{ reloaded chan string }

func (s *reloadingServer) Serve(ctx context.Context) error {
	select {
	case <-s.reloaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *reloadingServer) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (s *reloadingServer) Reload(path string) error {
	s.reloaded <- path
	return nil
}

// TestHangupDuringStart: a SIGHUP that comes while the server starts (a
// reload right after a restart) neither kills the process, SIGHUP's
// default, nor is lost: the reload runs once the server is up.
func TestHangupDuringStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	srv := &reloadingServer{reloaded: make(chan string, 1)}
	start := func(string, *zap.Logger) (Server, error) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			return nil, err
		}
		return srv, nil
	}
	app := &ucli.App{Flags: CommonFlags(), Commands: []*ucli.Command{RunCommand("test", "", "TEST_CONFIG", start)}}
	done := make(chan error, 1)
	go func() { done <- app.Run([]string{"test", "--log-level", "error", "run", "--config", path}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second): // only a bound on a broken test
		t.Fatal("the SIGHUP sent during start never reloaded the config")
	}
}
