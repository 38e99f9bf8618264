package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/wstun"
)

// TestRevokedEdgeRefusedAfterReload puts the edge's certificate on the
// relay's revocation list and reloads the config, as SIGHUP does: the
// next handshake is refused on both transports and logged with the
// reason, while the sessions already up stay.
func TestRevokedEdgeRefusedAfterReload(t *testing.T) {
	dir := t.TempDir()
	if _, err := certs.Generate(certs.GenerateOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	watchSecrets(t, dir)
	edgeKP, err := certs.LoadKeyPair(dir+"/edge.pem", dir+"/edge-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := edgeKP.GetClientCertificate(nil)
	fp := certs.Fingerprint(leaf.Leaf)
	t.Setenv("TEST_REVOKE_PROVIDER_KEY", providerKeys.OpenAI)
	config := func(revoked string) string {
		return writeFile(t, dir, "relay.yaml", fmt.Sprintf(`listen: 127.0.0.1:0
listen_quic: 127.0.0.1:0
tls: {cert: %[1]s/relay.pem, key: %[1]s/relay-key.pem, client_ca: %[1]s/ca.pem, revoked_edges: [%[2]s]}
providers:
  - {kind: openai, base_url: "http://127.0.0.1:1", api_keys: ["${TEST_REVOKE_PROVIDER_KEY}"]}
`, dir, revoked))
	}
	path := config("")
	f, err := relaycmd.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	srv, socks := serveRelay(t, f, zap.New(core))

	pool, err := certs.LoadPool(dir + "/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	tc := certs.ClientConfig(edgeKP, pool, "localhost")
	edgeCore, edgeLogs := observer.New(zap.WarnLevel)
	ws, err := wstun.NewDialer(socks.TCP.Addr().String(), tc, wstun.Config{Logger: zap.New(edgeCore)})
	if err != nil {
		t.Fatal(err)
	}
	quic, err := quictun.NewDialer(socks.UDP.LocalAddr().String(), tc,
		quictun.Config{HandshakeTimeout: 2 * time.Second, Logger: zap.New(edgeCore)})
	if err != nil {
		t.Fatal(err)
	}
	dialers := []tunnel.Dialer{ws, quic}
	// A relay that has accepted this edge before gets its new sessions used
	// before its answer (quictun.Dialer.welcome, wstun's early data): the
	// refusal ends the session instead of the dial, is logged, and the next
	// dial waits for the answer again.
	refusedInUse := map[tunnel.Dialer]string{
		ws:   "relay did not accept a session already in use; closed it",
		quic: "relay did not welcome a session already in use; closed it",
	}
	var before []tunnel.Session
	for _, d := range dialers {
		s, err := d.Dial(testCtx(t, 5*time.Second))
		if err != nil {
			t.Fatalf("%T before revocation: %v", d, err)
		}
		t.Cleanup(func() { s.Close() })
		before = append(before, s)
	}

	if err := srv.Reload(config(strings.ToUpper(fp))); err != nil {
		t.Fatal(err)
	}
	for _, d := range dialers {
		s, err := d.Dial(testCtx(t, 5*time.Second))
		if err == nil {
			ctx := testCtx(t, 5*time.Second)
			for edgeLogs.FilterMessage(refusedInUse[d]).Len() == 0 {
				select {
				case <-ctx.Done():
					t.Fatalf("the revoked edge's %T session was not refused", d)
				case <-time.After(10 * time.Millisecond):
				}
			}
			select {
			case <-s.Done():
			case <-ctx.Done():
				t.Errorf("the refused %T session is still up", d)
			}
			s, err = d.Dial(testCtx(t, 5*time.Second))
		}
		if err == nil {
			s.Close()
			t.Errorf("%T: revoked edge got a session", d)
		}
	}
	for _, transport := range []string{"ws", "quic"} {
		deadline := time.Now().Add(3 * time.Second)
		for !revocationLogged(logs, transport, fp) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s refusal logged naming the revocation: %v", transport, logs.FilterMessage("tunnel handshake refused").All())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, s := range before {
		if s.Err() != nil {
			t.Errorf("%s session up before the reload ended: %v", s.Info().Transport, s.Err())
		}
	}
	if err := srv.Reload(config("not-hex")); err == nil {
		t.Error("a malformed fingerprint was accepted")
	}
}

func revocationLogged(logs *observer.ObservedLogs, transport, fp string) bool {
	for _, e := range logs.FilterMessage("tunnel handshake refused").All() {
		m := e.ContextMap()
		r, _ := m["reason"].(string)
		tr, _ := m["transport"].(string)
		if strings.Contains(r, "revoked") && strings.Contains(r, fp) && (tr == transport || transport == "ws" && tr == "") {
			return true
		}
	}
	return false
}
