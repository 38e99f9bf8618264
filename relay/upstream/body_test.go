package upstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"weak"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel/tunneltest"
)

// TestBodyReaderLetsGo: the upstream request's body reader yields the body
// once, whole, and holds it no more at its end (the transport keeps the
// reader until the answer is over).
func TestBodyReaderLetsGo(t *testing.T) {
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i)
	}
	held := weak.Make(&body[0])
	r := bytesReader(body)
	body = nil
	got, err := io.ReadAll(r)
	if err != nil || len(got) != 1<<20 || got[12345] != byte(12345%256) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	got = nil
	runtime.GC()
	if held.Value() != nil {
		t.Fatal("the reader still holds the body after its end")
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}
	runtime.KeepAlive(r)
}

// TestRequestWrites: through the relay's own transport over HTTP/1.1 on a
// real socket, a small request goes out in one write (header and body
// together), a large one in more, and a request without a body declares
// none; the provider gets every body whole.
func TestRequestWrites(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(fmt.Sprintf("%d %q %d", r.ContentLength, r.TransferEncoding, len(b)))
	}))
	defer srv.Close()
	var writes atomic.Int32
	tr := NewTransport(TransportConfig{})
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return tunneltest.WriteCountingConn{Conn: c, Writes: &writes}, err
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	p := provider(t, OpenAI, srv.URL, "k")
	tests := []struct {
		name      string
		method    string
		body      []byte
		maxWrites int32
		want      string
	}{
		{"small", "POST", []byte(`{"model":"gpt-4o","messages":[]}`), 1, `32 [] 32`},
		{"at the bound", "POST", bytes.Repeat([]byte("x"), smallBody), 2, fmt.Sprintf("%d [] %d", smallBody, smallBody)},
		{"large", "POST", bytes.Repeat([]byte("x"), 64<<10), 64, fmt.Sprintf("%d [] %d", 64<<10, 64<<10)},
		{"none", "GET", nil, 1, `0 [] 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _, err := newRequest(p, &proto.RequestHeader{Method: tc.method, Path: "/v1/chat/completions"}, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			writes.Store(0)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if n := writes.Load(); n < 1 || n > tc.maxWrites {
				t.Errorf("%d writes, want 1 to %d", n, tc.maxWrites)
			}
			if g := got.Load(); g != tc.want {
				t.Errorf("provider got (length, transfer encoding, bytes) %v, want %s", g, tc.want)
			}
		})
	}
}
