package relaycmd

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel/quictun"
)

// TestQUICBesideWebSocket: a relay configured with listen alone (as the
// README's deploy section does) serves QUIC on the same port over UDP, so
// an edge on transport quic or auto connects; listen_quic: off serves
// WebSocket only.
func TestQUICBesideWebSocket(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Generate(certs.GenerateOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line string
		wantQUIC   bool
	}{
		{"default", "", true},
		{"off", "listen_quic: off", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "relay.yaml")
			cfg := fmt.Sprintf("listen: 127.0.0.1:0\n%s\ntls: {cert: %s, key: %s, client_ca: %s}\nproviders: [{kind: openai, base_url: https://api.openai.com/v1, api_keys: [sk-test-0123456789]}]\n",
				tc.line, files.RelayCert, files.RelayKey, files.CACert)
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			srv, err := Build(f, Sockets{}, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ctx) }()
			defer func() { cancel(); <-served }()
			if got := srv.QUIC != nil; got != tc.wantQUIC {
				t.Fatalf("QUIC served: %v, want %v", got, tc.wantQUIC)
			}
			if !tc.wantQUIC {
				return
			}
			wsPort := srv.WS.Addr().(*net.TCPAddr).Port
			if quicPort := srv.QUIC.Addr().(*net.UDPAddr).Port; quicPort != wsPort {
				t.Fatalf("QUIC on port %d, WebSocket on %d", quicPort, wsPort)
			}
			edge, err := certs.LoadKeyPair(files.EdgeCert, files.EdgeKey)
			if err != nil {
				t.Fatal(err)
			}
			pool, err := certs.LoadPool(files.CACert)
			if err != nil {
				t.Fatal(err)
			}
			d, err := quictun.NewDialer(srv.WS.Addr().String(), certs.ClientConfig(edge, pool, "localhost"), quictun.Config{})
			if err != nil {
				t.Fatal(err)
			}
			dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
			defer dcancel()
			sess, err := d.Dial(dctx)
			if err != nil {
				t.Fatalf("QUIC dial to the WebSocket address: %v", err)
			}
			sess.Close()
		})
	}
}
