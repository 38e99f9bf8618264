package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTraceLine: a measured request's trace line carries what the client
// saw (time to header and to first token) and the edge's Server-Timing and
// request id, so one request can be followed through the edge's log, and
// the client's own legs (connect, TLS handshake, request written).
func TestTraceLine(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Server-Timing", "edge;dur=0.1, tunnel;dur=151.0")
		w.Header().Set("X-Request-Id", "req_1")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(role + tok("a") + tok("b") + "data: [DONE]\n\n"))
	}))
	defer srv.Close()
	tg := target{url: srv.URL, kind: "stream", tokens: 2, timeout: 10 * time.Second}
	start := time.Now()
	s := tg.do(context.Background(), srv.Client())
	if !s.ok {
		t.Fatalf("request failed: %s", s.cause)
	}
	path := filepath.Join(t.TempDir(), "trace.jsonl")
	label := map[string]string{"contender": "x"}
	for range 2 { // appends
		if err := writeTrace(path, label, start, []sample{s}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []traceLine
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var l traceLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	l := lines[0]
	if !l.OK || l.RequestID != "req_1" || l.ServerTiming != "edge;dur=0.1, tunnel;dur=151.0" || l.Label["contender"] != "x" {
		t.Fatalf("line %+v", l)
	}
	if l.ConnectMs <= 0 || l.TLSMs < l.ConnectMs || l.WroteMs < l.TLSMs || l.HeaderMs < l.WroteMs {
		t.Fatalf("client legs %+v", l)
	}
	if l.HeaderMs <= 0 || l.TTFTMs < l.HeaderMs || l.TotalMs < l.TTFTMs || l.StartMs < 0 {
		t.Fatalf("times out of order: start %v header %v ttft %v total %v", l.StartMs, l.HeaderMs, l.TTFTMs, l.TotalMs)
	}
}

// TestBodyProgress: a whole body's trace marks when each MiB of it arrived,
// in order, one mark per whole MiB, so a stall shows as a gap between marks.
func TestBodyProgress(t *testing.T) {
	const size = 3<<20 + 100
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			_, _ = w.Write(chunk[:min(len(chunk), size-sent)])
		}
	}))
	defer srv.Close()
	tg := target{url: srv.URL, kind: "bulk", bulk: size, timeout: 10 * time.Second}
	s := tg.do(context.Background(), srv.Client())
	if !s.ok || s.bytes != size {
		t.Fatalf("ok %v, %d bytes, cause %q", s.ok, s.bytes, s.cause)
	}
	if len(s.mib) != 3 {
		t.Fatalf("%d MiB marks, want 3: %v", len(s.mib), s.mib)
	}
	for i := 1; i < len(s.mib); i++ {
		if s.mib[i] < s.mib[i-1] || s.mib[i] > s.total {
			t.Fatalf("marks out of order: %v (total %v)", s.mib, s.total)
		}
	}
}
