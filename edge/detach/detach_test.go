package detach

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/certs/tlsaccept"
	"github.com/strait/strait/tunnel/tunneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is an HTTPS server on loopback whose handler detaches every answer
// it can and hands its Stream to the test; connections given back go to
// the server through tlsaccept, as the edge's do.
type rig struct {
	reg      *Registry
	client   *http.Client
	url      string
	accepted atomic.Int64 // TCP connections the server accepted
	streams  chan *Stream
}

func newRig(t *testing.T, sweep time.Duration) *rig {
	t.Helper()
	return newRigIdle(t, sweep, time.Minute)
}

// newRigIdle is newRig with the idle timeout of kept-alive connections.
func newRigIdle(t *testing.T, sweep, idle time.Duration) *rig {
	t.Helper()
	return newRigReady(t, sweep, idle, nil)
}

// newRigReady is newRigIdle with what the server is handed of each
// connection (tlsaccept.Hooks.Ready; nil: the connection itself).
func newRigReady(t *testing.T, sweep, idle time.Duration, ready func(*tls.Conn) net.Conn) *rig {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	scfg := pki.ServerConfig()
	scfg.NextProtos = []string{"http/1.1"}
	rg := &rig{streams: make(chan *Stream, 4)}
	ln := tlsaccept.New(tunneltest.Listen(t), scfg, 10*time.Second,
		tlsaccept.Hooks{Accepted: func(*tls.Conn) { rg.accepted.Add(1) }, Ready: ready})
	rg.reg = New(ln.Return, sweep, idle)
	srv := &http.Server{ReadHeaderTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		switch r.URL.Path {
		case "/sized":
			w.Header().Set("Content-Length", "8")
		case "/empty":
			status = http.StatusNoContent
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(status)
		_ = http.NewResponseController(w).Flush()
		if s, ok := rg.reg.Take(w, r, status); ok {
			rg.streams <- s
			return
		}
		if status != http.StatusNoContent && r.Method != http.MethodHead {
			_, _ = io.WriteString(w, "declined")
		}
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }()
	ccfg := pki.ClientConfig()
	ccfg.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: ccfg}
	rg.client = &http.Client{Transport: tr}
	rg.url = "https://" + ln.Addr().String()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		rg.reg.Refuse()
		cut, cancel := context.WithCancel(context.Background())
		cancel()
		_ = rg.reg.Wait(cut)
		_ = srv.Close()
		<-served
		ln.Wait()
		rg.reg.Close()
	})
	return rg
}

// get sends a request and returns its response once the header is in,
// and whether its connection was one used before.
func (rg *rig) get(t *testing.T, method, path string) (*http.Response, bool) {
	t.Helper()
	reused := false
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, err := http.NewRequestWithContext(ctx, method, rg.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := rg.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res, reused
}

// nextReuses sends another request, ends its Stream when the handler
// detaches it, and reports whether it went on a connection used before.
func (rg *rig) nextReuses(t *testing.T, detached bool) bool {
	t.Helper()
	res, reused := rg.get(t, http.MethodGet, "/")
	defer res.Body.Close()
	if detached {
		rg.next(t).End(true)
	}
	return reused
}

// next is the Stream the handler took.
func (rg *rig) next(t *testing.T) *Stream {
	t.Helper()
	select {
	case s := <-rg.streams:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("the handler took no stream")
		return nil
	}
}

// TestStreamThenKeepAlive: a detached answer reaches the client as a
// chunked body, piece by piece, and its connection then serves the
// client's next request.
func TestStreamThenKeepAlive(t *testing.T) {
	rg := newRig(t, time.Hour)
	for i, want := range []bool{false, true} {
		res, reused := rg.get(t, http.MethodGet, "/")
		if reused != want {
			t.Fatalf("request %d: connection reused %v, want %v", i, reused, want)
		}
		s := rg.next(t)
		if s.Header().Get("Content-Type") != "text/event-stream" {
			t.Fatalf("Stream's header %v", s.Header())
		}
		buf := make([]byte, 64)
		for _, ev := range []string{"data: one\n\n", "data: two\n\n"} {
			if _, err := s.Write([]byte(ev)); err != nil {
				t.Fatal(err)
			}
			// Each Write reaches the client by itself: no buffering.
			if n, err := io.ReadAtLeast(res.Body, buf, len(ev)); err != nil || string(buf[:n]) != ev {
				t.Fatalf("client read %q, %v; want %q", buf[:n], err, ev)
			}
		}
		s.End(true)
		if rest, err := io.ReadAll(res.Body); err != nil || len(rest) != 0 {
			t.Fatalf("after End: %q, %v; want a clean end", rest, err)
		}
		res.Body.Close()
		if s.Context().Err() == nil {
			t.Fatal("the Stream's context outlived End")
		}
	}
	if n := rg.accepted.Load(); n != 1 {
		t.Fatalf("%d connections for two requests; want one, given back after the first", n)
	}
	if n := rg.reg.Len(); n != 0 {
		t.Fatalf("Len %d after both ended", n)
	}
}

// TestEndingKeepsAClientThatStopsAtItsLastEvent: a client that stops
// reading at its last event and closes the body (the Go SDK at [DONE])
// keeps its connection when the answer's last writes came after Ending:
// they leave with the last chunk, in one write.
func TestEndingKeepsAClientThatStopsAtItsLastEvent(t *testing.T) {
	rg := newRig(t, time.Hour)
	var reused [2]bool
	for i := range reused {
		var res *http.Response
		res, reused[i] = rg.get(t, http.MethodGet, "/")
		s := rg.next(t)
		if _, err := s.Write([]byte("data: one\n\n")); err != nil {
			t.Fatal(err)
		}
		s.Ending()
		if _, err := s.Write([]byte("data: [DONE]\n\n")); err != nil {
			t.Fatal(err)
		}
		s.End(true)
		br := bufio.NewReader(res.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("request %d: %v before [DONE]", i, err)
			}
			if line == "data: [DONE]\n" {
				break
			}
		}
		res.Body.Close() // without reading on, as the SDK does
	}
	if n := rg.accepted.Load(); n != 1 || reused != [2]bool{false, true} {
		t.Fatalf("%d connections for two requests, reused %v; want one, reused by the second", n, reused)
	}
}

// TestFinishBeforeEnd: Finish puts the whole answer on the wire, what
// Ending held and the last chunk, while the caller still has the stream
// (the edge's accounting runs between the two); End then gives the
// connection back, or closes it when told the accounting failed.
func TestFinishBeforeEnd(t *testing.T) {
	for _, tc := range []struct {
		name       string
		endOK      bool
		wantReused bool
	}{
		{"accounting done", true, true},
		{"accounting panicked", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRig(t, time.Hour)
			res, _ := rg.get(t, http.MethodGet, "/")
			s := rg.next(t)
			s.Ending()
			if _, err := s.Write([]byte("data: [DONE]\n\n")); err != nil {
				t.Fatal(err)
			}
			s.Finish(true)
			if _, err := s.Write([]byte("data: late\n\n")); err == nil {
				t.Error("a write after Finish succeeded")
			}
			body, err := io.ReadAll(res.Body) // returns only at the last chunk
			res.Body.Close()
			if err != nil || string(body) != "data: [DONE]\n\n" {
				t.Fatalf("before End the client read %q, %v; want the whole answer", body, err)
			}
			s.End(tc.endOK)
			if reused := rg.nextReuses(t, true); reused != tc.wantReused {
				t.Fatalf("next request reused the connection: %v, want %v", reused, tc.wantReused)
			}
		})
	}
}

// TestCutWriterDoesNotWait: a writer that was between two writes when
// the drain cut its stream sets a fresh write deadline, as the forwarder
// does before each write, and writes more than the socket buffers hold to
// a client that reads nothing: the write fails at once instead of waiting
// out the deadline.
func TestCutWriterDoesNotWait(t *testing.T) {
	rg := newRig(t, time.Hour)
	res, _ := rg.get(t, http.MethodGet, "/")
	defer res.Body.Close() // never read
	s := rg.next(t)
	ended := make(chan error, 1)
	go func() {
		<-s.Context().Done()
		_ = s.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := s.Write(make([]byte, 32<<20))
		s.End(false)
		ended <- err
	}()
	rg.reg.Refuse()
	cut, cancel := context.WithCancel(context.Background())
	cancel()
	waited := make(chan error, 1)
	go func() { waited <- rg.reg.Wait(cut) }()
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("a write after the cut succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after the cut waits on a client that reads nothing")
	}
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v", err)
	}
}

// TestKeptAliveConnectionIdles: after a detached answer the connection
// waits for its client's next request for the idle timeout, not the
// server's header timeout (the rig's is 50 ms: a request after a longer
// pause is still served on it), then is closed; a drain closes it at once.
func TestKeptAliveConnectionIdles(t *testing.T) {
	const idle = 600 * time.Millisecond
	for _, tc := range []struct {
		name  string
		pause time.Duration // before the second request
		drain bool          // Refuse while the connection idles
		reuse bool
	}{
		{"request after the header timeout, within the idle timeout", 150 * time.Millisecond, false, true},
		{"silent past the idle timeout", 2 * idle, false, false},
		{"drain while idle", 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newRigIdle(t, time.Hour, idle)
			res, _ := rg.get(t, http.MethodGet, "/")
			rg.next(t).End(true)
			if _, err := io.ReadAll(res.Body); err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if tc.drain {
				rg.reg.Refuse()
			}
			time.Sleep(tc.pause)
			if reused := rg.nextReuses(t, !tc.drain); reused != tc.reuse { // draining, the handler declines to detach
				t.Fatalf("second request on the first connection: %v, want %v", reused, tc.reuse)
			}
		})
	}
}

// TestBrokenStreamIsCut: an answer that ends broken closes its
// connection without the last chunk, and the client sees an error.
func TestBrokenStreamIsCut(t *testing.T) {
	rg := newRig(t, time.Hour)
	res, _ := rg.get(t, http.MethodGet, "/")
	defer res.Body.Close()
	s := rg.next(t)
	if _, err := s.Write([]byte("data: partial\n\n")); err != nil {
		t.Fatal(err)
	}
	s.End(false)
	body, err := io.ReadAll(res.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(body) != "data: partial\n\n" {
		t.Fatalf("client read %q, %v; want the partial body and io.ErrUnexpectedEOF", body, err)
	}
}

// TestClientGoneEndsContext: a client that goes away between two events
// ends its Stream's context, found by the sweep.
func TestClientGoneEndsContext(t *testing.T) {
	rg := newRig(t, 10*time.Millisecond)
	res, _ := rg.get(t, http.MethodGet, "/")
	s := rg.next(t)
	res.Body.Close() // mid-body: the client closes its connection
	select {
	case <-s.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the client left and its Stream's context did not end")
	}
	s.End(true) // not given back: the client is gone
	if n := rg.reg.Len(); n != 0 {
		t.Fatalf("Len %d after End", n)
	}
}

// TestTakeDeclines: what Take leaves with net/http.
func TestTakeDeclines(t *testing.T) {
	rg := newRig(t, time.Hour)
	for _, tc := range []struct {
		name, method, path, body string
	}{
		{"HEAD", http.MethodHead, "/", ""},
		{"declared length", http.MethodGet, "/sized", "declined"},
		{"no body", http.MethodGet, "/empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := rg.get(t, tc.method, tc.path)
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(body) != tc.body {
				t.Fatalf("body %q, %v; want %q from net/http", body, err, tc.body)
			}
		})
	}
	t.Run("HTTP/1.0", func(t *testing.T) {
		c, err := tls.Dial("tcp", strings.TrimPrefix(rg.url, "https://"), rg.client.Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil || !strings.HasSuffix(string(got), "\r\n\r\ndeclined") {
			t.Fatalf("HTTP/1.0 answer %q, %v; want net/http's", got, err)
		}
	})
	if len(rg.streams) != 0 {
		t.Fatal("a declined answer was taken")
	}
}

// TestWaitCutsWhatIsLeft: after Refuse, Take declines and a complete
// answer closes its connection; Wait, out of time, cuts the streams left
// and returns once they ended.
func TestWaitCutsWhatIsLeft(t *testing.T) {
	rg := newRig(t, time.Hour)
	resA, _ := rg.get(t, http.MethodGet, "/")
	defer resA.Body.Close()
	a := rg.next(t)
	resB, _ := rg.get(t, http.MethodGet, "/")
	defer resB.Body.Close()
	b := rg.next(t)

	rg.reg.Refuse()
	res, _ := rg.get(t, http.MethodGet, "/")
	if body, _ := io.ReadAll(res.Body); string(body) != "declined" {
		t.Fatalf("Take during a drain: %q; want it declined", body)
	}
	res.Body.Close()

	a.End(true)
	if _, err := io.ReadAll(resA.Body); err != nil {
		t.Fatalf("a complete answer during the drain: %v", err)
	}
	// b's writer ends it when its context ends, as the forwarder does.
	go func() {
		<-b.Context().Done()
		_, err := b.Write([]byte("data: late\n\n"))
		b.End(err == nil)
	}()
	cut, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rg.reg.Wait(cut); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait: %v; want the context's error", err)
	}
	if _, err := io.ReadAll(resB.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a cut answer: %v; want io.ErrUnexpectedEOF", err)
	}
	if n := rg.accepted.Load(); n != 3 {
		t.Fatalf("%d connections accepted; want 3 (none given back during the drain)", n)
	}
}

// lateIdleDeadline is a connection whose idle deadline (one a while ahead)
// takes effect only once release is closed: the order a loaded machine
// may run a kept-alive connection's wait in, after a drain began.
type lateIdleDeadline struct {
	*tls.Conn
	release chan struct{}
}

func (c *lateIdleDeadline) SetReadDeadline(t time.Time) error {
	if time.Until(t) > time.Second {
		<-c.release
	}
	return c.Conn.SetReadDeadline(t)
}

// TestDrainEndsIdleWaitStartedLate: a connection given back just before a
// drain began is closed by the drain, even when its wait for the next
// request sets its idle deadline after Refuse cut the waits: Close returns
// at once, not after the idle timeout.
func TestDrainEndsIdleWaitStartedLate(t *testing.T) {
	release := make(chan struct{})
	rg := newRigReady(t, time.Hour, time.Minute, func(c *tls.Conn) net.Conn {
		return &lateIdleDeadline{Conn: c, release: release}
	})
	res, _ := rg.get(t, http.MethodGet, "/")
	defer res.Body.Close()
	rg.next(t).End(true)
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
	rg.reg.Refuse()
	close(release)
	waited := make(chan struct{})
	go func() {
		rg.reg.idleWG.Wait()
		close(waited)
	}()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the kept-alive connection still waits for a request after the drain began")
	}
}
