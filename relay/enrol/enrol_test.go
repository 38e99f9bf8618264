package enrol_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
	relayenrol "github.com/strait/strait/relay/enrol"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// relayFixture is a real WebSocket tunnel listener with enrolment on.
type relayFixture struct {
	pki   *tunneltest.PKI
	store *relayenrol.Store
	addr  string
	logs  *observer.ObservedLogs
	// refused receives once per "tunnel handshake refused" entry, which
	// the listener logs after the client already saw its failure.
	refused chan struct{}
}

func newRelay(t *testing.T) *relayFixture {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	store := relayenrol.OpenStore(filepath.Join(t.TempDir(), relayenrol.StoreFile))
	core, logs := observer.New(zap.InfoLevel)
	refused := make(chan struct{}, 16)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "tunnel handshake refused" {
			refused <- struct{}{}
		}
		return nil
	}))
	rev, err := relayenrol.NewRevocations(store, log)
	if err != nil {
		t.Fatal(err)
	}
	tc := pki.ServerConfig()
	tc.VerifyConnection = rev.VerifyConnection
	ln, err := wstun.Listen(tunneltest.Listen(t), tc, wstun.Config{Logger: log,
		Enrol: &relayenrol.Handler{CA: pki.CA, Store: store, Log: log}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	accepted := make(chan struct{})
	go func() { // accept and drop: the tests only need the handshake
		defer close(accepted)
		for {
			s, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.Close()
		}
	}()
	t.Cleanup(func() { cancel(); ln.Close(); <-accepted })
	return &relayFixture{pki: pki, store: store, addr: ln.Addr().String(), logs: logs, refused: refused}
}

// token mints a join token for this relay, valid for ttl from created.
func (r *relayFixture) token(t *testing.T, created time.Time, ttl time.Duration) enrol.Token {
	t.Helper()
	secret, _, err := r.store.NewSecret(ttl, created)
	if err != nil {
		t.Fatal(err)
	}
	return enrol.Token{Relays: []string{r.addr}, CAFingerprint: certs.FullFingerprint(r.pki.CA.Cert),
		Secret: secret, Expires: created.Add(ttl)}
}

// join enrols a fresh key and returns the edge's certificate.
func join(t *testing.T, tok enrol.Token, name string) (tls.Certificate, error) {
	t.Helper()
	csr, key, err := certs.NewCSR(certs.ECDSAP256, name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := enrol.Enrol(ctx, tok, enrol.Request{Secret: tok.Secret, Name: name, CSR: string(csr)})
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair([]byte(res.Certificate), key)
}

// dial opens a tunnel session with cert, pinning the relay's CA.
func (r *relayFixture) dial(t *testing.T, cert tls.Certificate) (tunnel.Session, error) {
	t.Helper()
	d, err := wstun.NewDialer(r.addr, certs.ClientConfig(certs.StaticKeyPair(cert), r.pki.CA.Pool(), "127.0.0.1"), wstun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return d.Dial(ctx)
}

// TestJoinAndRevoke: a token enrols one edge, whose certificate opens a
// tunnel session; revoking it in the store (as `strait-relay edges
// revoke` does) refuses its next handshake with no reload.
func TestJoinAndRevoke(t *testing.T) {
	r := newRelay(t)
	cert, err := join(t, r.token(t, time.Now(), time.Hour), "edge-one")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	sess, err := r.dial(t, cert)
	if err != nil {
		t.Fatalf("tunnel with the enrolled certificate: %v", err)
	}
	sess.Close()
	st, err := r.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Edges) != 1 || st.Edges[0].Name != "edge-one" || st.Tokens[0].UsedAt == nil {
		t.Fatalf("store after enrolment: %+v", st)
	}
	if r.logs.FilterMessage("edge enrolled").Len() != 1 {
		t.Error("enrolment not logged")
	}
	if _, err := r.store.Revoke("edge-one", time.Now()); err != nil {
		t.Fatal(err)
	}
	if sess, err := r.dial(t, cert); err == nil {
		sess.Close()
		t.Fatal("revoked edge opened a session")
	} else if reason := certs.DescribeVerifyError(err); reason != "remote refused our certificate: bad certificate" {
		t.Errorf("revoked edge: %q (%v)", reason, err)
	}
	select {
	case <-r.refused:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay logged no refusal")
	}
	refused := r.logs.FilterMessage("tunnel handshake refused").All()
	if len(refused) != 1 || refused[0].ContextMap()["reason"] == "" {
		t.Fatalf("refusal not logged with its reason: %v", refused)
	}
	t.Logf("relay's reason: %s", refused[0].ContextMap()["reason"])
}

// TestJoinRefused: each way a join can fail names its reason, and none
// consumes the token or enrols anything.
func TestJoinRefused(t *testing.T) {
	r := newRelay(t)
	used := r.token(t, time.Now(), time.Hour)
	if _, err := join(t, used, "first"); err != nil {
		t.Fatal(err)
	}
	wrongFP := r.token(t, time.Now(), time.Hour)
	wrongFP.CAFingerprint = certs.FullFingerprint(tunneltest.NewPKI(t, "").CA.Cert)
	unknown := r.token(t, time.Now(), time.Hour)
	unknown.Secret = enrol.NewSecret()
	for _, tc := range []struct {
		name string
		tok  enrol.Token
		code string
	}{
		{"reused", used, enrol.CodeUsed},
		{"expired", r.token(t, time.Now().Add(-2*time.Hour), time.Hour), enrol.CodeExpired},
		{"wrong fingerprint", wrongFP, enrol.CodeFingerprint},
		{"unknown secret", unknown, enrol.CodeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := join(t, tc.tok, "second")
			e, ok := errors.AsType[*enrol.Error](err)
			if !ok || e.Code != tc.code {
				t.Fatalf("join: %v; want code %s", err, tc.code)
			}
			t.Logf("%v", err)
		})
	}
	st, err := r.store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Edges) != 1 {
		t.Errorf("%d edges enrolled, want 1", len(st.Edges))
	}
	for _, tok := range st.Tokens[1:] {
		if tok.UsedAt != nil {
			t.Errorf("refused join consumed token %s", tok.ID)
		}
	}
}

// TestTunnelNeedsCertificateDespiteEnrolment: a client that asks for the
// enrolment protocol gets no tunnel session, and one that asks for the
// tunnel without a certificate is refused at the handshake as before.
func TestTunnelNeedsCertificateDespiteEnrolment(t *testing.T) {
	r := newRelay(t)
	conn, err := tls.Dial("tcp", r.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{enrol.ALPN}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET " + wstun.Path + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := conn.Read(buf)
	if got := string(buf[:n]); len(got) < 12 || got[9:12] == "101" {
		t.Fatalf("upgrade on an enrolment connection answered %q", got)
	}
	if sess, err := r.dial(t, tls.Certificate{}); err == nil {
		sess.Close()
		t.Fatal("session without a client certificate")
	}
}

// TestRenewNeedsEnrolment: a certificate made by hand (not in the store)
// authenticates for the tunnel but cannot renew itself, and a renewal
// request without any client certificate never reaches the handler.
func TestRenewNeedsEnrolment(t *testing.T) {
	r := newRelay(t)
	csr, _, err := certs.NewCSR(certs.ECDSAP256, "by-hand")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = enrol.Renew(ctx, r.addr, r.pki.ClientConfigWith(&r.pki.Edge), "by-hand", csr)
	if e, ok := errors.AsType[*enrol.Error](err); !ok || e.Code != enrol.CodeNotEnrolled {
		t.Fatalf("renewal by a hand-made certificate: %v", err)
	}
	if _, err := enrol.Renew(ctx, r.addr, r.pki.ClientConfigWith(nil), "nobody", csr); err == nil {
		t.Fatal("renewal without a client certificate succeeded")
	}
}

// TestRenewRetry: a renewal whose answer never reached the edge can be
// asked again with the same certificate for the same new key, and gets
// the certificate issued the first time (no second one is made). A
// request for another key is refused as before, and revoking the new
// certificate by its fingerprint ends the retries too.
func TestRenewRetry(t *testing.T) {
	r := newRelay(t)
	old, err := join(t, r.token(t, time.Now(), time.Hour), "edge-one")
	if err != nil {
		t.Fatal(err)
	}
	oldTLS := r.pki.ClientConfigWith(&old)
	csr, key, err := certs.NewCSR(certs.ECDSAP256, "edge-one")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost, err := enrol.Renew(ctx, r.addr, oldTLS, "edge-one", csr)
	if err != nil {
		t.Fatal(err)
	}
	again, err := enrol.Renew(ctx, r.addr, oldTLS, "edge-one", csr)
	if err != nil || again.Certificate != lost.Certificate || again.Fingerprint != lost.Fingerprint {
		t.Fatalf("retried renewal: %v; same certificate %v", err, again.Certificate == lost.Certificate)
	}
	other, _, err := certs.NewCSR(certs.ECDSAP256, "edge-one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enrol.Renew(ctx, r.addr, oldTLS, "edge-one", other); !isCode(err, enrol.CodeNotEnrolled) {
		t.Fatalf("renewal for another key after a renewal: %v", err)
	}
	if st, err := r.store.Load(); err != nil || len(st.Edges) != 2 {
		t.Fatalf("store after the retries: %v, %+v", err, st)
	}
	renewed, err := tls.X509KeyPair([]byte(again.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := r.dial(t, renewed)
	if err != nil {
		t.Fatalf("tunnel with the renewed certificate: %v", err)
	}
	sess.Close()
	if _, err := r.store.Revoke(again.Fingerprint[:16], time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := enrol.Renew(ctx, r.addr, oldTLS, "edge-one", csr); !isCode(err, enrol.CodeNotEnrolled) {
		t.Fatalf("retried renewal of a revoked certificate: %v", err)
	}
}

func isCode(err error, code string) bool {
	e, ok := errors.AsType[*enrol.Error](err)
	return ok && e.Code == code
}

// TestRefusalsLogSampled: a flood of made-up enrolment requests (anyone who
// reaches the port can send them) is answered in full, each with its error,
// but logged only in part: the first ten, then one in a hundred.
func TestRefusalsLogSampled(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := &relayenrol.Handler{Log: zap.New(core)}
	const n = 500
	for range n {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, enrol.PathEnrol, strings.NewReader("{not json")))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), enrol.CodeBadCSR) {
			t.Fatalf("answer %d %q; want 400 with %s", rec.Code, rec.Body.String(), enrol.CodeBadCSR)
		}
	}
	got := logs.FilterMessage("enrolment refused").Len()
	if want := 10 + (n-10+99)/100; got < 10 || got > want {
		t.Fatalf("%d refusals logged %d lines; want 10 to %d", n, got, want)
	}
}
