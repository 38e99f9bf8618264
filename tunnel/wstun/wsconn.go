package wstun

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/strait/strait/tunnel"
)

// wsConn adapts a WebSocket to the byte stream yamux needs: Write queues
// whole yamux frames, which a writer goroutine sends most urgent first as
// binary messages of one or more frames (sched.go); Read concatenates
// incoming messages. It remembers the first transport error so a dead
// session can say why it died.
type wsConn struct {
	ws   *websocket.Conn
	sock SocketInfo // what the TCP socket runs, read back once connected

	readMu sync.Mutex // yamux has a single reader; the lock guards cur and rx anyway
	cur    io.Reader
	rx     rxCounter // what each stream received (rx.go)

	writeMu sync.Mutex // gorilla allows one concurrent writer: writeLoop, or Close
	// held is a yamux data-frame header waiting for its body (guarded by
	// heldMu), so that header and body are queued as one frame.
	heldMu  sync.Mutex
	held    []byte
	heldBuf [yamuxHeaderLen]byte
	// q holds the frames Write accepted until writeLoop sends them, most
	// urgent first (sched.go); writerDone is closed when writeLoop ends.
	q          *sched
	writerDone chan struct{}
	closeOnce  sync.Once

	// compressing: the session negotiated compression (compress.go). inf
	// then decodes what arrives; z, made on the first compressed write,
	// encodes what goes, except while rawPath says the path is too fast for
	// compression to pay (measurePath). stats counts bytes when not nil.
	compressing    bool
	z              *deflater
	inf            *inflater
	rawPath        atomic.Bool
	compressMinRTT time.Duration
	stats          *Stats

	// Small writes on a long path (coalesce.go): gatherRTT is the path's
	// round trip in ns when small batches are paced (0: never; set by
	// measurePath); window reads the congestion window in segments.
	gatherRTT atomic.Int64
	window    func() (segments int, known bool)
	// sender reads the socket's sender state (session.SenderState); nil
	// when the socket is not TCP.
	sender func() tunnel.SenderState
	// lazyWait is how long a batch of lazy frames waits for company on a
	// short path, in ns (lazy.go; lazyHold, but for tests).
	lazyWait atomic.Int64

	// readFailed, when set, runs before Read returns an error: yamux's
	// receive loop ends on it, and the session with it (session.wake).
	readFailed atomic.Pointer[func()]

	errMu  sync.Mutex
	err    error
	closed atomic.Bool // Close was called: later errors are its consequences

	// lastRecv is when anything last arrived (data, ping or pong), in Unix
	// nanoseconds: any frame is proof of life, so bulk data never lets a
	// busy peer look dead.
	lastRecv atomic.Int64
	// lastSend is when a write last completed: the monitor pings only when
	// this side has sent nothing for a heartbeat.
	lastSend atomic.Int64
}

func newWSConn(ws *websocket.Conn) *wsConn {
	c := &wsConn{ws: ws, q: newSched(), writerDone: make(chan struct{})}
	if rc := rawSocket(ws.NetConn()); rc != nil {
		c.window = func() (int, bool) { return readCwnd(rc) }
		c.sender = func() tunnel.SenderState { return readSenderState(rc) }
	}
	c.lazyWait.Store(int64(lazyHold))
	go c.writeLoop()
	c.touch()
	c.sent()
	ws.SetPongHandler(func(string) error { c.touch(); return nil })
	ws.SetPingHandler(func(msg string) error {
		c.touch()
		// As gorilla's default handler: answer at once, as a control frame
		// that does not wait behind queued data messages.
		err := ws.WriteControl(websocket.PongMessage, []byte(msg), time.Now().Add(time.Second))
		if err == websocket.ErrCloseSent {
			return nil
		}
		if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
			return nil
		}
		return err
	})
	return c
}

func (c *wsConn) touch() { c.lastRecv.Store(time.Now().UnixNano()) }
func (c *wsConn) sent()  { c.lastSend.Store(time.Now().UnixNano()) }

// silence is how long nothing has arrived.
func (c *wsConn) silence() time.Duration {
	return time.Since(time.Unix(0, c.lastRecv.Load()))
}

// sendSilence is how long this side has sent nothing.
func (c *wsConn) sendSilence() time.Duration {
	return time.Since(time.Unix(0, c.lastSend.Load()))
}

// ping sends a WebSocket ping. Control frames bypass yamux's send queue, so
// a heartbeat never waits behind bulk data there; the deadline bounds the
// wait for the socket itself.
func (c *wsConn) ping(deadline time.Time) error {
	err := c.ws.WriteControl(websocket.PingMessage, nil, deadline)
	if err == nil {
		c.sent()
	}
	return err
}

func (c *wsConn) Read(p []byte) (int, error) {
	n, err := c.readCounted(p)
	if err != nil {
		if f := c.readFailed.Load(); f != nil {
			(*f)()
		}
	}
	return n, err
}

// readCounted reads and counts what each stream received.
func (c *wsConn) readCounted(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	n, err := c.read(p)
	c.rx.feed(p[:n])
	return n, err
}

// read is Read without the per-stream count and the failure hook.
func (c *wsConn) read(p []byte) (int, error) {
	if c.inf != nil {
		return c.readCompressed(p)
	}
	for {
		if c.cur == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				c.setErr(err)
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				continue // the protocol sends binary only; ignore anything else
			}
			c.cur = r
		}
		n, err := c.cur.Read(p)
		if n > 0 {
			c.touch()
			c.stats.received(n, n)
		}
		if err == io.EOF {
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		if err != nil {
			c.setErr(err)
		}
		return n, err
	}
}

// Write queues p for writeLoop and returns at once, so that a writer never
// blocks on the socket and later urgent frames can overtake queued bulk
// (sched.go). The session's yamux (internal/yamux) hands whole frames to
// WriteFrame instead; Write serves a single writer that sends a data frame's
// 12-byte header and its body in two Writes, as upstream yamux's send loop
// does: the header is held and queued with the body as one frame, which
// also keeps them in one WebSocket message (two messages per frame doubled
// the WebSocket frames, TLS records and, for small SSE events, TCP
// segments, which a loss-based congestion window counts against us).
func (c *wsConn) Write(p []byte) (int, error) {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	if c.held == nil && announcesBody(p) {
		c.held = append(c.heldBuf[:0], p...)
		return len(p), nil
	}
	frame := make([]byte, 0, len(c.held)+len(p))
	frame = append(append(frame, c.held...), p...)
	c.held = nil
	if len(frame) < yamuxHeaderLen {
		return 0, errors.New("wstun: write of a partial yamux frame")
	}
	if err := c.q.push(frame); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteFrame queues one whole yamux frame, header and body, and returns.
// yamux's streams hand their frames here from their own goroutines
// (yamux.FrameWriter), with no send loop between: upstream's loop cost two
// goroutine handoffs per frame, and with it about a tenth of both tiers'
// CPU per request (scripts/lab, 2026-12-07, "the multiplexer's send loop").
func (c *wsConn) WriteFrame(hdr, body []byte) error {
	frame := make([]byte, 0, len(hdr)+len(body))
	frame = append(append(frame, hdr...), body...)
	return c.q.push(frame)
}

// WriteLazyFrame queues one whole data frame as WriteFrame does, marked as
// one no peer waits on (lazy.go): on a short path it may wait a moment for
// company.
func (c *wsConn) WriteLazyFrame(hdr, body []byte) error {
	frame := make([]byte, 0, len(hdr)+len(body))
	frame = append(append(frame, hdr...), body...)
	frame[0] |= lazyMark
	return c.q.push(frame)
}

// writeLoop sends queued frames, several to a message when they wait, until
// the queue is closed and drained or the connection fails.
func (c *wsConn) writeLoop() {
	defer close(c.writerDone)
	var batch [][]byte
	var msg []byte
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	defer gather.Stop()
	var lastWrite time.Time
	var last lastStreams
	for c.q.wait() {
		var ok bool
		if batch, ok = c.q.take(batch[:0], batchBytes); !ok {
			continue
		}
		pacing := c.gatherRTT.Load() > 0 // a long path (coalesce.go)
		if pacing {
			if d := c.gatherTime(batch, &last, lastWrite, time.Now()); d > 0 {
				gather.Reset(d)
				batch = c.q.gather(batch, gather, fillsSegment)
				gather.Stop()
			}
			last.set(batch)
		} else if allLazy(batch) { // a short path (lazy.go)
			gather.Reset(time.Duration(c.lazyWait.Load()))
			batch = c.q.gather(batch, gather, notAllLazy)
			gather.Stop()
		}
		// The first byte is room for rawMarker, so that a raw message of
		// a compressed session goes out without a copy (writeRaw).
		msg = append(msg[:0], rawMarker)
		for i, f := range batch {
			start := len(msg)
			msg = append(msg, f...)
			msg[start] &^= lazyMark // the wire's version byte again
			batch[i] = nil
		}
		c.writeMu.Lock()
		err := c.writeMessage(msg)
		c.writeMu.Unlock()
		if pacing {
			lastWrite = time.Now()
		}
		if err != nil {
			c.setErr(err)
			c.q.close(err)
			// A connection that cannot write is dead: closing it ends the
			// read side too, so the session ends now, not at the next write.
			_ = c.ws.Close()
			return
		}
		c.sent()
	}
}

// yamux frame header: version(1) type(1) flags(2) stream(4) length(4).
const (
	yamuxHeaderLen = 12
	yamuxTypeData  = 0
)

// closeFlush bounds how long Close waits for queued frames to leave: what
// Write accepted should reach the peer (a stream's last bytes and FIN, a
// go-away), but a dead peer must not hold Close up.
const closeFlush = time.Second

// announcesBody reports whether p is exactly a yamux data-frame header whose
// body follows in the next Write.
func announcesBody(p []byte) bool {
	return len(p) == yamuxHeaderLen && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0
}

// writeMessage sends msg[1:] as one binary message; msg[0] is room for
// rawMarker (see writeLoop).
func (c *wsConn) writeMessage(msg []byte) error {
	if c.compressing {
		return c.writeCompressed(msg)
	}
	body := msg[1:]
	c.stats.sent(len(body), len(body))
	return c.ws.WriteMessage(websocket.BinaryMessage, body)
}

// Close lets the writer send what is queued (for at most closeFlush), sends
// a close message if the socket still takes writes, then closes the
// connection (without TLS's close_notify when the close message did not go
// out), so Close takes about closeFlush at most. A writer still stuck on a
// dead peer (socket buffers full, no deadline) is released by closing the
// connection; yamux's Close waits for its own send loop, which never blocks
// here.
func (c *wsConn) Close() error {
	err := net.ErrClosed
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.q.close(nil)
		flushed := time.NewTimer(closeFlush)
		select {
		case <-c.writerDone:
		case <-flushed.C:
		}
		flushed.Stop()
		said := false
		if c.writeMu.TryLock() {
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			said = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)) == nil
			c.writeMu.Unlock()
		}
		if tc, ok := under[*tls.Conn](c.ws.UnderlyingConn()); ok && !said {
			// The peer takes no bytes (or a write is stuck): closing the
			// TLS connection would send a close_notify first, for which
			// crypto/tls waits up to 5 s of its own. Close the socket.
			_ = tc.NetConn().Close()
		}
		err = c.ws.Close()
		<-c.writerDone
	})
	return err
}

// setErr records err if it is the first and not caused by Close.
func (c *wsConn) setErr(err error) {
	if c.closed.Load() {
		return
	}
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
}

// firstErr is the first read or write error seen before Close, or nil.
func (c *wsConn) firstErr() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}
