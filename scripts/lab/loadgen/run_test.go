package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProvider answers the loadgen's requests as the lab's fake does: an SSE
// stream of X-Fake-Tokens tokens X-Fake-Interval-Ms apart, or a small JSON
// body. It counts the connections it accepted.
func fakeProvider(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Stream bool }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if !body.Stream {
			_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"ok"}}]}`))
			return
		}
		var tokens, ms int
		_, _ = fmt.Sscan(r.Header.Get("X-Fake-Tokens"), &tokens)
		_, _ = fmt.Sscan(r.Header.Get("X-Fake-Interval-Ms"), &ms)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range tokens {
			if i > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		// The body's last chunk comes a moment after [DONE], as it may
		// from an edge whose End frame arrives behind the event.
		w.(http.Flusher).Flush()
		time.Sleep(20 * time.Millisecond)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// An open-loop keepalive run opens its connections before it measures: no
// measured request pays a TCP or TLS handshake, and the run opens no
// connection beyond the warm-up's.
func TestRateRunOpensConnectionsFirst(t *testing.T) {
	srv, conns := fakeProvider(t)
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	const concurrency = 16
	c := &runConfig{
		target: target{url: srv.URL, kind: "unary", tokens: 1, tlsConf: srv.Client().Transport.(*http.Transport).TLSClientConfig,
			timeout: 10 * time.Second},
		mode: "keepalive", concurrency: concurrency, requests: 40, rate: 400, warmup: 1, duration: 10 * time.Second,
		trace: trace,
	}
	res, err := c.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 40 {
		t.Fatalf("%d of 40 requests ok: %v", res.OK, res.Errors)
	}
	opened := conns.Load()
	// The warm-up request's own connection, and one per concurrent stream.
	if opened != concurrency+1 {
		t.Fatalf("%d connections opened, want %d", opened, concurrency+1)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		var l traceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		lines++
		if l.TLSMs != 0 || l.ConnectMs != 0 {
			t.Fatalf("a measured request opened a connection: %s", sc.Bytes())
		}
	}
	if lines != 40 {
		t.Fatalf("%d trace lines, want 40", lines)
	}
}
