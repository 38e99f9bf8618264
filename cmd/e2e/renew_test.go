package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/cmd/internal/relaycmd"
	edgeenrol "github.com/strait/strait/edge/enrol"
	relayenrol "github.com/strait/strait/relay/enrol"
	"github.com/strait/strait/tunnel/wstun"
)

// TestRenewThroughRelay: an edge set up by init and join renews its tunnel
// certificate through the relay's TLS port, authenticating with the
// current one; the running key pair switches to the new certificate, which
// opens tunnel sessions, and the old one cannot renew again.
func TestRenewThroughRelay(t *testing.T) {
	dir := t.TempDir()
	addr := freeTCPUDPPort(t)
	env := map[string]string{"OPENAI_API_KEY": "sk-provider-secret-0123456789", "OPENAI_BASE_URL": "http://127.0.0.1:9"}
	t.Setenv("OPENAI_API_KEY", env["OPENAI_API_KEY"])
	initRes, err := relayenrol.Init(relayenrol.InitOptions{Dir: filepath.Join(dir, "relay"), Addrs: []string{addr}, Listen: addr,
		AdminListen: "127.0.0.1:0", Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	f, err := relaycmd.Load(initRes.Config)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := relaycmd.Build(f, relaycmd.Sockets{}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() { cancel(); <-served }()

	edgeDir := filepath.Join(dir, "edge")
	joined, err := edgeenrol.Join(testCtx(t, 10*time.Second), edgeenrol.Options{Token: initRes.Token.String(), Dir: edgeDir,
		Name: "renewing-edge", Listen: "127.0.0.1:0", FrontDNS: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(edgeDir, "edge.pem"), filepath.Join(edgeDir, "edge-key.pem")
	kp, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := certs.LoadPool(filepath.Join(edgeDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tc := certs.ClientConfig(kp, roots, "127.0.0.1")
	r := &edgeenrol.Renewer{CertFile: certFile, KeyFile: keyFile, KeyPair: kp, Relays: []edgeenrol.Target{{Addr: addr, TLS: tc}},
		Remaining: 1, Log: zap.NewNop()}
	if !r.Due() {
		t.Fatal("a certificate with its whole life left is due at Remaining 1")
	}
	oldTLS := certs.ClientConfig(certs.StaticKeyPair(*kp.Certificate()), roots, "127.0.0.1")
	if err := r.Renew(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("renew: %v", err)
	}
	renewed := certs.FullFingerprint(kp.Certificate().Leaf)
	if renewed == joined.Fingerprint || kp.Certificate().Leaf.Subject.CommonName != "renewing-edge" {
		t.Fatalf("key pair after renewal: %s %q", renewed[:16], kp.Certificate().Leaf.Subject.CommonName)
	}
	onDisk, err := certs.LoadKeyPair(certFile, keyFile)
	if err != nil || certs.FullFingerprint(onDisk.Certificate().Leaf) != renewed {
		t.Fatalf("files after renewal: %v", err)
	}
	d, err := wstun.NewDialer(addr, tc, wstun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := d.Dial(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("tunnel with the renewed certificate: %v", err)
	}
	sess.Close()
	_, err = enrol.Renew(testCtx(t, 10*time.Second), addr, oldTLS, "renewing-edge", []byte("unused"))
	if e, ok := err.(*enrol.Error); !ok || e.Code != enrol.CodeNotEnrolled {
		t.Fatalf("renewing with the replaced certificate: %v", err)
	}
	st, err := relayenrol.OpenStore(initRes.Store).Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Edges) != 2 || st.Edges[0].RenewedTo != renewed || st.Edges[1].RenewedFrom != joined.Fingerprint {
		t.Fatalf("store after renewal: %+v", st.Edges)
	}
}
