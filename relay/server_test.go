package relay

import (
	"bytes"
	"context"
	"crypto/tls"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// providers is a one-provider config named name.
func providers(name string) []upstream.ProviderConfig {
	return []upstream.ProviderConfig{{Name: name, Kind: upstream.OpenAI, BaseURL: "http://127.0.0.1:1",
		Keys: []upstream.Key{upstream.NewKey(providerKey)}}}
}

// TestServerReload: Reload swaps the provider registry, the tunnel
// certificate and the revocation list together; a refused list or
// registry changes none of them.
func TestServerReload(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	r, err := New(Config{Providers: providers("first")})
	if err != nil {
		t.Fatal(err)
	}
	kp := certs.StaticKeyPair(pki.Relay)
	next := certs.StaticKeyPair(pki.Edge)
	revoked := &certs.Revocations{}
	s := NewServer(r, ServerConfig{TunnelCert: kp, Revoked: revoked})
	fp := strings.Repeat("ab", 32)

	for _, tc := range []struct {
		name      string
		u         Update
		wantErr   string
		wantProv  string
		wantCert  tls.Certificate
		wantRevok int
	}{
		{"bad list", Update{Relay: Config{Providers: providers("second")}, TunnelCert: next, RevokedEdges: []string{"not-hex"}},
			"revoked edges", "first", pki.Relay, 0},
		{"no providers", Update{TunnelCert: next, RevokedEdges: []string{fp}}, "no providers", "first", pki.Relay, 0},
		{"applied", Update{Relay: Config{Providers: providers("second")}, TunnelCert: next, RevokedEdges: []string{fp}},
			"", "second", pki.Edge, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Reload(tc.u)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Reload: %v; want an error containing %q", err, tc.wantErr)
			}
			if ps := r.Registry().Providers(); len(ps) != 1 || ps[0].Name != tc.wantProv {
				t.Errorf("providers %v; want only %s", ps, tc.wantProv)
			}
			if !bytes.Equal(kp.Certificate().Certificate[0], tc.wantCert.Certificate[0]) {
				t.Error("the tunnel certificate is not the one expected")
			}
			if n := revoked.Len(); n != tc.wantRevok {
				t.Errorf("%d revoked edges; want %d", n, tc.wantRevok)
			}
		})
	}
}

// TestServerAdminAroundServe: the admin hook starts before the relay
// serves and stops only after the drain, when Serve is about to return.
func TestServerAdminAroundServe(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	ln, err := wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), wstun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Providers: providers("openai"), DrainTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	started := make(chan struct{})
	s := NewServer(r, ServerConfig{Admin: func(got *Server) func() {
		if got.Relay != r {
			t.Error("the admin hook got another relay")
		}
		note("admin started")
		close(started)
		return func() { note("admin stopped") }
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	note("Serve returned")
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(events, ", "); got != "admin started, admin stopped, Serve returned" {
		t.Errorf("events: %s", got)
	}
}
