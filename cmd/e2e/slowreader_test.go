package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
)

// bigEvent is a provider that answers model "big-event" with one SSE event
// of eventBytes, written as fast as the relay takes it, and records per
// request how much it wrote and whether the request was canceled. It then
// holds the response open until the client goes, unless finish is set.
type bigEvent struct {
	next       http.Handler
	eventBytes int
	finish     bool
	mu         sync.Mutex
	calls      []*bigCall
}

type bigCall struct {
	written  atomic.Int64
	canceled chan struct{}
}

func (b *bigEvent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !bytes.Contains(body, []byte(`"big-event"`)) {
		r.Body = io.NopCloser(bytes.NewReader(body))
		b.next.ServeHTTP(w, r)
		return
	}
	c := &bigCall{canceled: make(chan struct{})}
	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.mu.Unlock()
	defer close(c.canceled)
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	if _, err := io.WriteString(w, `data: {"choices":[{"delta":{"content":"`); err != nil {
		return
	}
	for sent := 0; sent < b.eventBytes; sent += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		c.written.Add(int64(len(chunk)))
	}
	_, _ = io.WriteString(w, "\"}}]}\n\n")
	if !b.finish {
		<-r.Context().Done()
	}
}

func (b *bigEvent) snapshot() []*bigCall {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*bigCall(nil), b.calls...)
}

// TestSlowReadersAreBounded opens clients that send a streaming request,
// read the response header and then stop reading, while the provider sends
// each one event far larger than every buffer on the way. The relay must
// stop reading upstream (flow control reaches the provider), the process's
// heap must stay within a bound per stalled stream, and the edge must cut
// each such client after client_write_timeout, which cancels the upstream
// call and frees what it held.
func TestSlowReadersAreBounded(t *testing.T) {
	const (
		clients    = 6
		eventBytes = 64 << 20
		window     = 4 << 20 // the tunnel's default stream window
		// What a stalled stream may hold in this process: the edge's and
		// the relay's stream windows, the usage meter's copy of an
		// unfinished event (up to 8 MiB, doubling), and TLS and copy
		// buffers. Generous: the point is that it does not grow with the
		// event.
		perStream = 2*window + 16<<20 + 2<<20
	)
	up := &bigEvent{eventBytes: eventBytes}
	s := newStack(t, stackOptions{
		upstream: func(next http.Handler) http.Handler { up.next = next; return up },
		edgeEdit: func(f *edgecmd.File) {
			f.ClientWriteTimeout = 2 * time.Second
			// A fixed number of sessions: on a loaded machine the probes'
			// round trips inflate while the streams run, and autoscale
			// added a session every cooldown (12 of them, each with its
			// compressors), which the heap bounds below counted against
			// the stalled streams.
			f.Tunnel.Sessions = edgecmd.SessionsFile{Min: 2, Max: 2}
		},
	})
	base := heapInUse()
	var conns []*tls.Conn
	for range clients {
		c, _ := askBigEvent(t, s)
		conns = append(conns, c) // and never read again
	}
	// Wait until every upstream write has stalled.
	var written [clients]int64
	for stable := 0; stable < 5; {
		time.Sleep(100 * time.Millisecond)
		calls := up.snapshot()
		if len(calls) != clients {
			continue
		}
		stable++
		for i, c := range calls {
			if n := c.written.Load(); n != written[i] {
				written[i], stable = n, 0
			}
		}
	}
	grown := heapInUse() - base
	t.Logf("%d stalled clients: provider wrote %v bytes each; heap grew %d MiB (%d MiB per stream)",
		clients, written, grown>>20, grown>>20/clients)
	writeHeapProfile("stalled")
	for i, n := range written {
		if n >= eventBytes {
			t.Errorf("client %d: the provider wrote the whole %d MiB event to a client that reads nothing", i, eventBytes>>20)
		}
	}
	if grown > clients*perStream {
		t.Errorf("heap grew %d MiB for %d stalled streams; want at most %d MiB each", grown>>20, clients, perStream>>20)
	}
	for i, c := range up.snapshot() {
		select {
		case <-c.canceled:
		case <-time.After(10 * time.Second):
			t.Fatalf("upstream call %d still running 10s after its client stopped reading", i)
		}
	}
	// Streams are released once both ends have closed them.
	after := heapInUse() - base
	for deadline := time.Now().Add(5 * time.Second); after > 16<<20 && time.Now().Before(deadline); after = heapInUse() - base {
		time.Sleep(100 * time.Millisecond)
	}
	if after > 16<<20 {
		writeHeapProfile("after")
		t.Errorf("heap still %d MiB above the start after the slow clients were cut", after>>20)
	}
}

// askBigEvent sends a streaming request for model big-event over a fresh
// HTTP/1.1 connection and reads the response header (through a small
// buffer, so the body stays in the socket).
func askBigEvent(t *testing.T, s *stack) (*tls.Conn, *http.Response) {
	t.Helper()
	return askBigEventOn(t, s.dialHTTP1(t))
}

// askBigEventOn is askBigEvent on the connection c.
func askBigEventOn(t *testing.T, c *tls.Conn) (*tls.Conn, *http.Response) {
	t.Helper()
	body := `{"model":"big-event","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	_, err := io.WriteString(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer "+clientKey+"\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response header: %v %v", resp, err)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, resp
}

// writeHeapProfile writes a heap profile to $STRAIT_HEAP_PROFILE-name.pprof
// when that is set, for finding what holds memory.
func writeHeapProfile(name string) {
	p := os.Getenv("STRAIT_HEAP_PROFILE")
	if p == "" {
		return
	}
	if f, err := os.Create(p + "-" + name + ".pprof"); err == nil {
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
