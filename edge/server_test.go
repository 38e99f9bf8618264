package edge

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// serverConfig is a ServerConfig on a fresh loopback listener, whose edge
// has one key ("app") and a relay that is never reachable.
func serverConfig(t *testing.T) ServerConfig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pki := tunneltest.NewPKI(t, "")
	return ServerConfig{Listener: ln, Front: certs.StaticKeyPair(pki.Relay), TunnelCert: certs.StaticKeyPair(pki.Edge),
		Edge: Config{Keys: keySet(t, "app"), Relays: []tunnel.Dialer{noRelay{}}}}
}

// isClosed reports whether ln no longer accepts connections.
func isClosed(ln net.Listener) bool {
	_, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	return err != nil
}

// TestServerLifecycle: Serve starts the admin hook before it takes traffic
// and the keys-file watcher, which reloads the keys when the file changes;
// when its context ends it stops the watcher, then the admin hook (the
// stores are still open then, so the drain shows), then closes the
// listener and the stores.
func TestServerLifecycle(t *testing.T) {
	cfg := serverConfig(t)
	cfg.DataDir = t.TempDir()
	cfg.Audit = &audit.Config{Path: filepath.Join(cfg.DataDir, "audit.jsonl")}
	reloaded := make(chan struct{}, 1)
	core, _ := observer.New(zap.InfoLevel)
	cfg.Edge.Logger = zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "client keys reloaded" {
			select { // a second reload must not block the watcher
			case reloaded <- struct{}{}:
			default:
			}
		}
		return nil
	}))
	cfg.LoadKeys = func() (*auth.Keys, error) {
		kf, err := keystore.Load(KeysPath(cfg.DataDir))
		if err != nil {
			return nil, err
		}
		stored, err := kf.Entries()
		if err != nil {
			return nil, err
		}
		return auth.NewKeySet(stored)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	started := make(chan struct{})
	var s *Server
	cfg.Admin = func(got *Server) func() {
		if got != s {
			t.Error("the admin hook got another server")
		}
		note("admin started")
		close(started)
		return func() {
			if _, err := s.Usage.Query(usagedb.Filter{}); err != nil {
				t.Errorf("the usage store is closed before the admin listener stops: %v", err)
			}
			note("admin stopped")
		}
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	<-started

	// The watcher notes the file's state when its goroutine starts, which
	// the test cannot see: a change made before that is the file it starts
	// from. So keys are added until a reload is seen, each a change.
	var key string
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatal("the keys file changed 10 times but the keys were not reloaded")
		}
		var err error
		if key, err = keystore.Create(KeysPath(cfg.DataDir), keystore.Record{Name: fmt.Sprintf("cli-key-%d", i)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-reloaded:
		case <-time.After(4 * keysPoll):
			continue
		}
		break
	}
	if _, ok := s.Edge.keys.Load().Lookup(key); !ok {
		t.Error("the key created on the command line does not work after the reload")
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	note("Serve returned")
	if got := strings.Join(events, ", "); got != "admin started, admin stopped, Serve returned" {
		t.Errorf("events: %s", got)
	}
	if !isClosed(cfg.Listener) {
		t.Error("the listener still accepts after Serve returned")
	}
	if _, err := s.Usage.Query(usagedb.Filter{}); err == nil {
		t.Error("the usage store is still open after Serve returned")
	}
}

// TestNewServerFailureClosesAll: a server that cannot be built releases
// the listener it was given.
func TestNewServerFailureClosesAll(t *testing.T) {
	cfg := serverConfig(t)
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = notDir
	if _, err := NewServer(cfg); err == nil || !strings.Contains(err.Error(), "data_dir") {
		t.Fatalf("NewServer with a file as data_dir: %v; want a data_dir error", err)
	}
	if !isClosed(cfg.Listener) {
		t.Error("the listener still accepts after NewServer failed")
	}
}

// TestServerReload: Reload swaps the keys and both certificates in place.
func TestServerReload(t *testing.T) {
	cfg := serverConfig(t)
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pki := tunneltest.NewPKI(t, "")
	s.Reload(Update{Keys: keySet(t, "other"), Front: certs.StaticKeyPair(pki.Relay), TunnelCert: certs.StaticKeyPair(pki.Edge)})
	if _, ok := s.Edge.keys.Load().Lookup("key-of-other"); !ok {
		t.Error("the new key does not work")
	}
	if _, ok := s.Edge.keys.Load().Lookup("key-of-app"); ok {
		t.Error("the removed key still works")
	}
	if !bytes.Equal(cfg.Front.Certificate().Certificate[0], pki.Relay.Certificate[0]) {
		t.Error("the public certificate was not swapped")
	}
	if !bytes.Equal(cfg.TunnelCert.Certificate().Certificate[0], pki.Edge.Certificate[0]) {
		t.Error("the tunnel certificate was not swapped")
	}
}
