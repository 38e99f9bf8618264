package edge

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestHandshakes: client TLS handshakes run on the listener's goroutines,
// not on net/http's serving goroutine (whose stack would keep what the
// handshake grew); HTTP/2 and HTTP/1.1 are still offered and served; a
// client that never completes its handshake holds up no other client and
// is closed at the handshake timeout.
func TestHandshakes(t *testing.T) {
	stacks := make(chan string, 8)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})
	addr, roots := serveHandshakesWith(t, newArrivals(make(announcements, 64)), ok, time.Second, func(cfg *tls.Config) {
		cert := cfg.GetCertificate
		cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			b := make([]byte, 64<<10)
			select {
			case stacks <- string(b[:runtime.Stack(b, false)]):
			default:
			}
			return cert(hello)
		}
	})
	get := func(h2 bool) string {
		t.Helper()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: h2}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	// A client that connects and says nothing, in its handshake meanwhile.
	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if got := get(true); got != "HTTP/2.0" {
		t.Fatalf("with h2 offered: served %s", got)
	}
	if got := get(false); got != "HTTP/1.1" {
		t.Fatalf("with only http/1.1 offered: served %s", got)
	}
	stack := <-stacks
	if strings.Contains(stack, "net/http.(*conn).serve") || !strings.Contains(stack, "tlsaccept.(*Listener).handshake") {
		t.Fatalf("the handshake ran on\n%s", stack)
	}
	// The stalled client is closed at the timeout: its read ends.
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := stalled.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("stalled handshake: read %v; want the connection closed", err)
	}
}

// TestHandshakesClose: closing the listener ends the handshakes under way
// and withdraws their connections' announcements (goleak checks the
// goroutines in TestMain).
func TestHandshakesClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(announcements, 4)
	a := newArrivals(got)
	hl := acceptClients(ln, serverTLS(&tls.Config{}), time.Minute, a, zap.NewNop())
	defer hl.Wait()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n := got.next(t); n != 1 {
		t.Fatalf("accept announced %+d", n)
	}
	if err := hl.Close(); err != nil {
		t.Fatal(err)
	}
	if n := got.next(t); n != -1 {
		t.Fatalf("close withdrew %+d", n)
	}
	if _, err := hl.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
