// Package detach streams an HTTP/1.1 response on a client connection taken
// from net/http, so that an open stream costs what it must (a goroutine,
// the TLS connection, the tunnel stream) and not what net/http keeps per
// connection for as long as its handler runs.
//
// Why: memory per open stream. A handler streaming a minutes-long answer
// keeps net/http's serving goroutine (8 KiB of stack), its background
// reader (4 KiB), the connection's bufio reader and writer and the
// response's chunking buffer (about 12 KiB), and the parsed request, for
// the answer's whole life. Measured at 4 000 open streams: 43.6 KiB live
// per stream at the edge with net/http holding the connection, 16.8 with
// the stream detached (scripts/lab/README.md, 2026-12-07).
//
// A Registry takes the connection once the response header is out
// (Take), and the caller writes the body through the Stream, which frames
// it as HTTP/1.1 chunks. At the end (End), a complete response gets its
// terminating chunk and the connection goes back to the server for the
// client's next request (keep-alive); a broken one is closed without it,
// so the client cannot take a cut body for a whole one. What net/http
// did for the handler while the connection was its own, the Registry does
// for every detached stream: it notices a client that went away (its
// socket leaves the ESTABLISHED state, or a write fails) and cancels the
// stream's context, and it lets a server drain wait for detached streams
// (Refuse, Wait).
package detach

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Registry takes responses' connections from net/http and keeps track of
// them until they end.
type Registry struct {
	// give hands a connection whose response ended cleanly back to the
	// server (tlsaccept.Listener.Return); false: the server no longer
	// takes connections, and the Registry closes it.
	give func(net.Conn) bool
	// idle bounds the wait for a kept-alive connection's next request.
	idle time.Duration

	mu       sync.Mutex
	streams  map[*Stream]struct{}
	idlers   map[net.Conn]struct{} // connections waiting for their next request
	refusing bool
	wg       sync.WaitGroup // one per stream in streams
	idleWG   sync.WaitGroup // one per connection in idlers

	stop chan struct{}
	done chan struct{}
}

// New starts a Registry that checks every sweep whether the clients of
// its streams are still there. give takes back a connection whose
// response ended cleanly, for its next request, once that request begins
// to arrive; a connection that stays silent for idle (the server's idle
// timeout for kept-alive connections) is closed instead. Close stops it.
//
// Why wait here: net/http treats a connection it is given as a new one,
// whose request must arrive within ReadHeaderTimeout (10 s), not the idle
// timeout of a connection it kept alive itself (2 minutes), and during a
// Shutdown it waits 5 s for a new connection's request. Waiting for the
// first bytes first gives a detached answer's connection the same idle
// life as any other, at the cost of a small goroutine while it idles,
// less than net/http's own serving goroutine and buffers.
func New(give func(net.Conn) bool, sweep, idle time.Duration) *Registry {
	g := &Registry{give: give, idle: idle, streams: make(map[*Stream]struct{}), idlers: make(map[net.Conn]struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
	go g.sweepEvery(sweep)
	return g
}

// Stream is one response on a connection taken from net/http: an
// http.ResponseWriter whose header is already sent, each Write one chunk
// written to the client at once. It also has the methods
// http.ResponseController looks for (FlushError, SetWriteDeadline), so
// writers wrapping it work unchanged.
type Stream struct {
	g      *Registry
	conn   net.Conn
	socket syscall.RawConn // under conn, for the sweep; nil if none
	ctype  []string        // the sent header's Content-Type
	header http.Header     // made of ctype on demand
	reuse  bool            // the connection may carry another request after this one
	ctx    context.Context
	cancel context.CancelFunc

	failed bool // a write failed: the connection's TLS state is no longer usable
	// ending: Ending was called, and the chunks written since wait in held
	// (from chunkBufs) for Finish, which sends them with the last chunk.
	ending bool
	held   *[]byte
	// finished: Finish ran; sent: it put the whole response on the wire.
	finished, sent bool
}

// Take takes w's connection from net/http for the rest of a response
// whose status and header are sent and flushed, and reports false (w
// untouched) when it cannot: the Registry refuses (a drain started), the
// request is not HTTP/1.1, or the response is not chunked (HEAD, a status
// without a body, a declared length). The Stream's context ends when its
// client goes away, when the drain cuts it, or at End.
func (g *Registry) Take(w http.ResponseWriter, r *http.Request, status int) (*Stream, bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Method == http.MethodHead || !bodyAllowed(status) ||
		w.Header().Get("Content-Length") != "" || w.Header().Get("Transfer-Encoding") != "" {
		return nil, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refusing {
		return nil, false
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, false
	}
	// Of the header, sent already, only its Content-Type is kept, for
	// writers that tell an event stream by it: the whole map is a KiB a
	// stream.
	s := &Stream{g: g, conn: conn, socket: socketOf(conn), ctype: w.Header()["Content-Type"],
		// Bytes after the request (a pipelining client, or junk) would be
		// lost with net/http's reader: such a connection is not reused.
		reuse: !r.Close && brw.Reader.Buffered() == 0 && !closing(w.Header())}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	g.streams[s] = struct{}{}
	g.wg.Add(1)
	return s, true
}

// Context ends when the stream's client went away or the stream was cut,
// and at End.
func (s *Stream) Context() context.Context { return s.ctx }

// Header is what is kept of the response's header, already sent (its
// Content-Type): changes go nowhere.
func (s *Stream) Header() http.Header {
	if s.header == nil {
		s.header = http.Header{"Content-Type": s.ctype}
	}
	return s.header
}

// WriteHeader does nothing: the header is sent.
func (s *Stream) WriteHeader(int) {}

// Write sends p to the client as one chunk, in one write to the
// connection (one TLS record for an event). A failed write cancels the
// stream's context, as net/http cancels a request's on a failed write.
func (s *Stream) Write(p []byte) (int, error) {
	if s.finished {
		return 0, errFinished // after the last chunk it would corrupt the next response
	}
	if err := s.ctx.Err(); err != nil {
		// Cut by a drain, or the client left: a writer that set a fresh
		// write deadline since (the forwarder does before each write)
		// must not wait on a client that reads nothing.
		s.failed = true
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.ending {
		if s.held == nil {
			s.held = chunkBufs.Get().(*[]byte)
			*s.held = (*s.held)[:0]
		}
		*s.held = appendChunk(*s.held, p)
		return len(p), nil
	}
	bp := chunkBufs.Get().(*[]byte)
	b := appendChunk((*bp)[:0], p)
	_, err := s.conn.Write(b)
	if cap(b) <= maxPooledChunk {
		*bp = b
		chunkBufs.Put(bp)
	}
	if err != nil {
		s.failed = true
		s.cancel()
		return 0, err
	}
	return len(p), nil
}

// appendChunk appends p framed as one HTTP/1.1 chunk.
func appendChunk(b, p []byte) []byte {
	b = strconv.AppendInt(b, int64(len(p)), 16)
	return append(append(append(b, '\r', '\n'), p...), '\r', '\n')
}

// Ending says that the answer ends right after the writes that follow, with
// no wait between (the forwarder found the relay's end of the answer
// already there): they wait, and Finish sends them with the last chunk in
// one write. A client that stops reading at its last event, as the Go SDK does
// at [DONE], then finds the body's end in the same read, and Go's transport
// keeps the connection for the next request; with the last chunk in a
// later segment it closes it.
func (s *Stream) Ending() { s.ending = true }

// chunkBufs pool the buffers a chunk is framed in: the stream holds none
// while it waits for its next event.
var chunkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledChunk bounds the buffers kept in chunkBufs.
const maxPooledChunk = 64 << 10

// FlushError does nothing: every Write is on the connection when it
// returns.
func (s *Stream) FlushError() error { return nil }

// SetWriteDeadline bounds the writes to the client, as
// http.ResponseController.SetWriteDeadline does.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

// Finish ends the response on the wire: complete, what Ending held and the
// terminating chunk go out; broken (or after a failed write, or once the
// client left or the drain cut the stream), nothing more. It leaves the
// context and the connection alone, so the caller's accounting can run on
// before End, and the client has its whole answer meanwhile. Call it at
// most once, after the last Write; End calls it if it was not.
func (s *Stream) Finish(complete bool) {
	s.finished = true
	if complete && !s.failed && s.ctx.Err() == nil {
		last := lastChunk
		if s.held != nil {
			last = append(*s.held, lastChunk...)
			*s.held = last
		}
		_, err := s.conn.Write(last)
		s.sent = err == nil
	}
	if s.held != nil {
		if cap(*s.held) <= maxPooledChunk {
			chunkBufs.Put(s.held)
		}
		s.held = nil
	}
}

// End ends the stream: its context, and its connection, which goes back to
// the server when the response went out complete and the connection may
// carry another request, and is closed otherwise; complete false closes it
// in any case (after a panic in the caller's accounting, say). Call it
// once, after Finish or instead of it.
func (s *Stream) End(complete bool) {
	g := s.g
	g.mu.Lock()
	delete(g.streams, s)
	reuse := s.reuse && !g.refusing
	g.mu.Unlock()
	defer g.wg.Done()
	if !s.finished {
		s.Finish(complete)
	}
	ok := complete && s.sent && s.ctx.Err() == nil
	s.cancel()
	switch {
	case !s.sent:
		// No close_notify: a TLS alert after a write that failed would go
		// out of sequence (the client sees a bad MAC), and after a broken
		// answer it would only say more than is true.
		_ = netConn(s.conn).Close()
	case ok && reuse && s.conn.SetDeadline(time.Time{}) == nil && g.keepAlive(s.conn, s.socket):
	default:
		_ = s.conn.Close()
	}
}

// keepAlive gives c back to the server once its client sends its next
// request, or closes it after the idle timeout or when the server drains
// (see New). It reports false, and leaves c to the caller, during a drain.
func (g *Registry) keepAlive(c net.Conn, socket syscall.RawConn) bool {
	if socket == nil { // nothing to wait on: the server times the wait
		return g.give(c)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refusing {
		return false
	}
	g.idlers[c] = struct{}{}
	g.idleWG.Add(1)
	go g.awaitRequest(c, socket)
	return true
}

func (g *Registry) awaitRequest(c net.Conn, socket syscall.RawConn) {
	defer g.idleWG.Done()
	err := c.SetReadDeadline(time.Now().Add(g.idle))
	// A Refuse since keepAlive cut the wait with a deadline that the one
	// above may have replaced: the drain would wait out the idle timeout.
	// One after this check sets its deadline after ours.
	g.mu.Lock()
	refusing := g.refusing
	g.mu.Unlock()
	if err == nil && !refusing {
		err = awaitData(socket)
	}
	g.mu.Lock()
	delete(g.idlers, c)
	refusing = g.refusing
	g.mu.Unlock()
	if err != nil || refusing || c.SetReadDeadline(time.Time{}) != nil || !g.give(c) {
		_ = c.Close()
	}
}

// netConn is the connection under c's TLS.
func netConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		return u.NetConn()
	}
	return c
}

var lastChunk = []byte("0\r\n\r\n")

// errFinished is a Write's error after Finish.
var errFinished = errors.New("detach: write after the response's end")

// Refuse makes Take refuse from now on, and End close connections instead
// of giving them back: the server is draining. Call it before the
// server's Shutdown, which does not wait for detached streams (Wait does).
func (g *Registry) Refuse() {
	g.mu.Lock()
	g.refusing = true
	for c := range g.idlers { // as Shutdown closes its idle connections
		_ = c.SetReadDeadline(time.Now())
	}
	g.mu.Unlock()
}

// Wait waits for the detached streams to end. When ctx ends first it cuts
// those left (their contexts end, their writes fail) and waits for them,
// and returns ctx's error. Call Refuse first.
func (g *Registry) Wait(ctx context.Context) error {
	ended := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(ended)
	}()
	select {
	case <-ended:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	for s := range g.streams {
		s.cancel()
		_ = s.conn.SetWriteDeadline(time.Now())
	}
	g.mu.Unlock()
	<-ended
	return ctx.Err()
}

// Len is how many detached streams are open.
func (g *Registry) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.streams)
}

// Close stops the sweep, closes the connections waiting for their next
// request and waits for that. Streams still open carry on.
func (g *Registry) Close() {
	close(g.stop)
	<-g.done
	g.Refuse()
	g.idleWG.Wait()
}

// sweepEvery cancels, every d, the streams whose clients went away. A
// client that leaves mid-answer must stop its upstream call (net/http's
// background reader noticed for the handler); between two events only the
// socket's state says so.
func (g *Registry) sweepEvery(d time.Duration) {
	defer close(g.done)
	t := time.NewTicker(d)
	defer t.Stop()
	var open []*Stream
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		open = open[:0]
		g.mu.Lock()
		for s := range g.streams {
			open = append(open, s)
		}
		g.mu.Unlock()
		for _, s := range open {
			if s.ctx.Err() == nil && peerGone(s.socket) {
				s.cancel()
			}
		}
		clear(open) // hold no ended stream until the next sweep
	}
}

// bodyAllowed reports whether a response with status has a body, and so
// a chunked one over HTTP/1.1.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// closing reports a response that asked for its connection to be closed.
func closing(h http.Header) bool {
	for _, v := range h.Values("Connection") {
		if strings.Contains(strings.ToLower(v), "close") {
			return true
		}
	}
	return false
}
