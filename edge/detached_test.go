package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// serveTLS runs an Edge with cfg in front of relay through Edge.Serve, on
// a loopback TLS listener speaking HTTP/1.1 (the path of detached answers),
// and returns a client connection to it.
func serveTLS(t *testing.T, relay *stubRelay, cfg Config, keys ...auth.Entry) *tls.Conn {
	t.Helper()
	k, err := auth.NewKeySet(keys)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys, cfg.Relays, cfg.Logger = k, []tunnel.Dialer{relay.dialer}, zap.NewNop()
	cfg.SessionsPerRelay = 1
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	pki := tunneltest.NewPKI(t, "")
	scfg := pki.ServerConfig()
	scfg.ClientAuth, scfg.ClientCAs = tls.NoClientCert, nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Serve(sctx, ln, scfg) }()
	t.Cleanup(func() { stop(); <-done })
	ccfg := pki.ClientConfig()
	ccfg.Certificates, ccfg.NextProtos = nil, []string{"http/1.1"}
	c, err := tls.Dial("tcp", ln.Addr().String(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawPost is an HTTP/1.1 POST with the given credential header line.
func rawPost(path, credential, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: edge\r\n%s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, credential, len(body), body)
}

// TestDetachedAnswerEndsWhole: what the usage meter still holds at a
// detached answer's end (an unterminated last event, written by the
// accounting's first step) goes out inside the response, before its last
// chunk, whether the relay's end came with the last event or after it;
// nothing follows the response on the kept-alive connection.
func TestDetachedAnswerEndsWhole(t *testing.T) {
	const last = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"LAST"}}]}`
	for _, endLater := range []bool{false, true} {
		t.Run(fmt.Sprintf("end later %v", endLater), func(t *testing.T) {
			relay := startStubRelay(t)
			relay.script = func(w *proto.Writer) {
				_ = w.WriteResponse(&proto.ResponseHeader{Status: http.StatusOK, Header: http.Header{"Content-Type": {"text/event-stream"}}})
				_, _ = w.Write([]byte(`data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"first"}}]}` + "\n\n"))
				time.Sleep(20 * time.Millisecond) // the forwarder writes the first event alone
				if !endLater {
					w.Hold() // the last event and the End in one write: the edge sees them together
				}
				_, _ = w.Write([]byte(last)) // no blank line: the meter holds it to the end
				if endLater {
					time.Sleep(50 * time.Millisecond)
				}
				_ = w.WriteEnd(proto.End{})
			}
			c := serveTLS(t, relay, Config{}, entry("app", auth.Client{}))
			body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if _, err := io.WriteString(c, rawPost(chatPath, "Authorization: Bearer key-of-app", body)); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || !strings.Contains(string(got), "LAST") {
				t.Fatalf("body %q, %v; want it to end with the last event", got, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, _ := br.Read(make([]byte, 512)); n > 0 {
				t.Fatalf("%d bytes followed the response's last chunk on the kept-alive connection", n)
			}
		})
	}
}

// TestGuardedJSONStreamKeepsNetHTTP: an answer that streams without SSE
// (Gemini's streamGenerateContent without alt=sse) under a border guard
// that holds the whole body is not detached: the guard holds its header
// too, which has not gone out yet, and the client gets a status line.
func TestGuardedJSONStreamKeepsNetHTTP(t *testing.T) {
	relay := startStubRelay(t)
	relay.script = func(w *proto.Writer) {
		_ = w.WriteResponse(&proto.ResponseHeader{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}}})
		_, _ = w.Write([]byte(`[{"candidates":[{"content":{"parts":[{"text":"hi"}],"role":"model"}}]}`))
		time.Sleep(20 * time.Millisecond)
		_, _ = w.Write([]byte(`,{"candidates":[{"content":{"parts":[{"text":" there"}],"role":"model"},"finishReason":"STOP"}]}]`))
		_ = w.WriteEnd(proto.End{})
	}
	mask, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	c := serveTLS(t, relay, Config{Guard: &guard.Set{Default: mask}}, entry("app", auth.Client{}))
	body := `{"contents":[{"role":"user","parts":[{"text":"call 13812345678"}]}]}`
	if _, err := io.WriteString(c, rawPost("/v1beta/models/gemini-2.0-flash:streamGenerateContent", "X-Goog-Api-Key: key-of-app", body)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	got, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || err != nil || !strings.Contains(string(got), "there") {
		t.Fatalf("status %d, body %q, %v; want 200 and the whole answer", res.StatusCode, got, err)
	}
}
