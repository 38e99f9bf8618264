package wstun

// Early data: an edge that writes its first yamux frames right behind the
// upgrade request, without waiting for the relay's 101.
//
// A stream that waits for a new session pays every round trip of the
// session's setup: TCP, TLS 1.3, the upgrade, then its own request. The
// upgrade's round trip carries nothing the edge needs to know before it
// sends: the 101 only repeats the key the edge chose and the relay's
// compression answer, which a relay that has accepted this edge before gave
// last time. So the relay accepts frames that arrive with the upgrade
// request (pipelineWriter), and says so in its 101 (earlyHeader); an edge
// whose Dialer has seen that header, and knows the compression answer, uses
// the next session at once (earlyConn): gorilla reads a 101 made up locally
// from the remembered answer, and the relay's real one is checked when the
// session first reads. A real answer that differs, or none (a refusal: a
// revoked certificate, or an old relay's gorilla refusing the frames), ends
// the session; its streams fail unanswered, the edge's pool resends requests
// that got no answer, and the Dialer forgets the relay's answer so that the
// next dial waits for the 101 again and reports a refusal itself.
//
// An old relay, one that predates early data, never sends earlyHeader, so an
// edge never sends early data to it (gorilla there would refuse the
// upgrade). A relay replaced by an old one at the same address either
// refuses (no 101: as above) or, when the early frames happened to arrive
// after its upgrade, answers a 101 without earlyHeader: that session works
// and stays (its requests may already be dispatched, so failing it could
// have them sent twice), and the Dialer only forgets the answer.

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// earlyHeader in a 101 response says that the relay accepts data written
// right behind the upgrade request.
const earlyHeader = "Strait-Early-Data"

// pipelineWriter lets gorilla's Upgrader take frames that came with the
// upgrade request. gorilla refuses the upgrade when net/http's read buffer
// holds anything past the request ("client sent data before handshake is
// complete"): it reads the connection through a buffer of its own, and the
// bytes would be lost. Here
// Hijack hands gorilla a connection that yields the buffered bytes first and
// an empty read buffer, so not a byte is lost. Old edges never pipeline and
// see no difference.
type pipelineWriter struct{ http.ResponseWriter }

func (w pipelineWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("wstun: response does not implement http.Hijacker")
	}
	c, brw, err := h.Hijack()
	if err != nil || brw.Reader.Buffered() == 0 {
		return c, brw, err
	}
	early, _ := brw.Reader.Peek(brw.Reader.Buffered()) // cannot fail: no more than buffered
	pc := &prefixConn{Conn: c, early: bytes.Clone(early)}
	// gorilla only checks the reader is empty: its own Reader (ReadBufferSize
	// is set) reads pc. 16 bytes is bufio's minimum.
	return pc, bufio.NewReadWriter(bufio.NewReaderSize(pc, 16), brw.Writer), nil
}

// prefixConn reads early before the connection itself. Only the session's
// single reader reads it.
type prefixConn struct {
	net.Conn
	early []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// NetConn returns the TLS connection, for socketInfo.
func (c *prefixConn) NetConn() net.Conn { return c.Conn }

// Relay answers a Dialer remembers (Dialer.answer).
const (
	answerUnknown    int32 = iota // dial and wait for the 101
	answerPlain                   // early data accepted, compression not
	answerCompressed              // early data and compression accepted
)

// rememberAnswer is what a Dialer keeps of a real 101 response: whether the
// next session may send before its 101, and with what compression.
func rememberAnswer(resp *http.Response, compressed bool) int32 {
	switch {
	case resp == nil || resp.Header.Get(earlyHeader) != "1":
		return answerUnknown
	case compressed:
		return answerCompressed
	default:
		return answerPlain
	}
}

// earlyConn is the edge's TLS connection for a session used before its 101
// (see the file comment). gorilla writes the upgrade request through it and
// reads from it a 101 made up from the remembered answer; the first read
// after that, the session's, checks the relay's real 101 before it passes
// the relay's frames on.
//
// gorilla's dial writes the request and reads the made-up 101 before the
// session's goroutines start, and the session has a single reader, so the
// fields need no lock.
type earlyConn struct {
	net.Conn // the *tls.Conn
	// compressed is the remembered compression answer; timeout bounds the
	// wait for the real 101, from the session's first read.
	compressed bool
	timeout    time.Duration
	// failed runs once when the real 101 is not the remembered one or does
	// not come, unless this edge closed the connection first; forget, when
	// the 101 is right but no longer offers early data.
	failed func(error)
	forget func()

	reqDone atomic.Bool  // the request is written: later writes pass through
	req     bytes.Buffer // the request as written, until its header ended
	key     string       // its Sec-WebSocket-Key
	answer  []byte       // the made-up 101 not yet read by gorilla
	served  bool         // the made-up 101 was read: next comes the real one
	checked bool         // the real 101 was checked
	br      *bufio.Reader
	closed  atomic.Bool
}

func (c *earlyConn) Write(p []byte) (int, error) {
	if c.reqDone.Load() {
		return c.Conn.Write(p)
	}
	n, err := c.Conn.Write(p)
	c.req.Write(p[:n])
	if i := bytes.Index(c.req.Bytes(), []byte("\r\n\r\n")); i >= 0 {
		req, perr := http.ReadRequest(bufio.NewReader(bytes.NewReader(c.req.Bytes()[:i+4])))
		if perr != nil {
			return n, fmt.Errorf("wstun: early data: the upgrade request: %w", perr)
		}
		c.key = req.Header.Get("Sec-Websocket-Key")
		c.answer = c.madeUp()
		c.req = bytes.Buffer{}
		c.reqDone.Store(true)
	}
	return n, err
}

// madeUp is the 101 the relay sent last time, for this request's key.
func (c *earlyConn) madeUp() []byte {
	b := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		acceptKey(c.key) + "\r\n" + earlyHeader + ": 1\r\n")
	if c.compressed {
		b = append(b, compressHeader+": "+CompressionDeflate+"\r\n"...)
	}
	return append(b, "\r\n"...)
}

func (c *earlyConn) Read(p []byte) (int, error) {
	if !c.served && c.answer != nil {
		n := copy(p, c.answer)
		c.answer = c.answer[n:]
		c.served = len(c.answer) == 0
		return n, nil
	}
	if !c.checked {
		if err := c.check(); err != nil {
			// wsConn.Close may close the socket under this connection
			// (net.ErrClosed) rather than call Close.
			if !c.closed.Load() && !errors.Is(err, net.ErrClosed) {
				c.failed(err)
			}
			c.closeSocket()
			return 0, err
		}
		c.checked = true
	}
	if c.br != nil {
		if c.br.Buffered() > 0 {
			return c.br.Read(p)
		}
		c.br = nil // the rest comes straight from the connection
	}
	return c.Conn.Read(p)
}

// check reads the relay's real 101 and compares it with the made-up one,
// as gorilla checks a 101 and as Dialer.Dial reads the compression answer.
func (c *earlyConn) check() error {
	if c.key == "" {
		return errors.New("wstun: early data: read before the upgrade request was written")
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	c.br = bufio.NewReaderSize(c.Conn, 4<<10)
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("wstun: early data: no upgrade response: %w", err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusSwitchingProtocols:
		return fmt.Errorf("wstun: early data: upgrade answered HTTP %s", resp.Status)
	case !headerHas(resp.Header, "Upgrade", "websocket") || !headerHas(resp.Header, "Connection", "upgrade") ||
		resp.Header.Get("Sec-Websocket-Accept") != acceptKey(c.key):
		return errors.New("wstun: early data: not a WebSocket upgrade response")
	case resp.Header.Get("Sec-Websocket-Extensions") != "" || resp.Header.Get("Sec-Websocket-Protocol") != "":
		return errors.New("wstun: early data: the relay chose an extension or subprotocol nobody offered")
	case answersDeflate(resp) != c.compressed:
		return fmt.Errorf("wstun: early data: the relay's compression answer changed (%q)", resp.Header.Get(compressHeader))
	case resp.Header.Get(earlyHeader) != "1":
		c.forget() // an old relay that took the frames after its upgrade: see the file comment
	}
	return c.Conn.SetReadDeadline(time.Time{})
}

func (c *earlyConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// closeSocket ends a session whose 101 failed its check: the socket goes at
// once, without the close_notify that crypto/tls may wait 5 s to write.
func (c *earlyConn) closeSocket() {
	if tc, ok := under[*tls.Conn](c.Conn); ok {
		tc.NetConn().Close()
		return
	}
	c.Conn.Close()
}

// NetConn returns the TLS connection, for socketInfo and the peer's name.
func (c *earlyConn) NetConn() net.Conn { return c.Conn }

// acceptKey is Sec-WebSocket-Accept for key (RFC 6455 §4.2.2).
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

var _, _ net.Conn = (*earlyConn)(nil), (*prefixConn)(nil)
