package wstun

// Compression of the tunnel's WebSocket messages.
//
// An SSE event of a few bytes of text crosses the tunnel as one yamux data
// frame of ~100–300 bytes of JSON that repeats itself from event to event and
// from stream to stream: the same keys, ids, model name and framing. On a
// loss-limited link the bytes are the bottleneck, so a session can compress
// everything it sends as ONE raw DEFLATE stream (RFC 1951) per direction,
// shared by all its streams: a repeat of anything in the last 32 KiB of the
// session becomes a back-reference of two or three bytes.
//
// Framing: every binary message is what one yamux write (header and body, see
// wsConn.Write) compresses to, ended by a sync flush so that the message
// decodes in full on arrival: no event waits for the next. As in
// permessage-deflate (RFC 7692 §7.2.1), the flush's constant tail 00 00 ff ff
// is not sent; the receiver puts it back. A body that looks incompressible
// (see incompressible) goes instead as a raw message led by rawMarker,
// outside the DEFLATE stream. Unlike permessage-deflate as
// gorilla implements it (no context takeover: every message starts from
// nothing), the context spans the session, which is what makes small events
// compress.
//
// Negotiation: the dialer offers "Strait-Compress: deflate" in the upgrade
// request; a listener that allows it answers with the same header in its 101
// response, and from then on both directions are compressed. A peer that
// predates compression ignores the header (an old relay does not answer, so
// the new edge sends plain messages) or never sends it (an old edge, so the
// new relay does not answer): old and new interoperate, uncompressed.
//
// Cost: the sender's compressor is klauspost/compress/flate at deflateLevel,
// about 1 MiB per session (hash chains over a 32 KiB window); the receiver's
// decompressor about 75 KiB (40 KiB measured, plus its 32 KiB output buffer).
// Nothing is kept per stream.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/gorilla/websocket"
	"github.com/klauspost/compress/flate"

	"github.com/strait/strait/tunnel"
)

// Values of Config.Compression.
const (
	// CompressionDeflate compresses the session when the peer supports it.
	CompressionDeflate = "deflate"
	// CompressionOff never compresses: the dialer offers nothing and the
	// listener accepts nothing, exactly as a peer that predates compression.
	CompressionOff = "off"
)

// compressHeader carries the offer (request) and the answer (101 response).
const compressHeader = "Strait-Compress"

// deflateLevel is klauspost/compress/flate's level 7, its lowest with lazy
// matching over hash chains. Its levels 1–6 store a flushed block under 128
// bytes without matching and forget their history, and many yamux writes are
// that small (window updates, Anthropic's short events): on SSE streams level
// 7 sends about half the bytes of level 5 at the same CPU per message (see
// the notes of issue 12), and levels 8–9 gain nothing more.
const deflateLevel = 7

// syncTail ends every sync flush; it is cut by the sender and restored by the
// receiver.
var syncTail = []byte{0, 0, 0xff, 0xff}

// ValidCompression checks a Config.Compression value.
func ValidCompression(v string) error {
	switch v {
	case "", CompressionDeflate, CompressionOff:
		return nil
	}
	return fmt.Errorf("compression %q: want %q or %q", v, CompressionDeflate, CompressionOff)
}

// compressOffer is the dialer's upgrade request header: the offer, or nil
// when compression is off.
func (c Config) compressOffer() http.Header {
	if c.Compression == CompressionOff {
		return nil
	}
	return http.Header{compressHeader: {CompressionDeflate}}
}

// compressAnswer is the listener's side: the 101 response header and
// whether the session is compressed, given the dialer's request.
func (c Config) compressAnswer(r *http.Request) (http.Header, bool) {
	if c.Compression == CompressionOff || !offers(r.Header, CompressionDeflate) {
		return nil, false
	}
	return http.Header{compressHeader: {CompressionDeflate}}, true
}

// compressAccepted is the dialer's side: whether the listener answered the
// offer. Only an offered method counts; anything else leaves the session
// plain, which an old or confused peer also reads.
func (c Config) compressAccepted(resp *http.Response) bool {
	return c.Compression != CompressionOff && answersDeflate(resp)
}

// answersDeflate reports whether a 101 response accepts compression.
func answersDeflate(resp *http.Response) bool {
	return resp != nil && strings.TrimSpace(resp.Header.Get(compressHeader)) == CompressionDeflate
}

// offers reports whether h lists method in a comma-separated
// Strait-Compress header (a later version may offer several).
func offers(h http.Header, method string) bool { return headerHas(h, compressHeader, method) }

// headerHas reports whether the comma-separated header name lists token,
// in any case.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), token) {
				return true
			}
		}
	}
	return false
}

// Stats counts the tunnel's bytes before and after compression, for a
// metric of the ratio. Payload bytes are yamux's (stream data and frame
// headers); wire bytes are the WebSocket message payloads that carry them,
// equal to payload bytes on a session without compression. WebSocket, TLS
// and TCP framing come on top of both. One Stats may be shared by many
// sessions; it is safe for concurrent use.
type Stats struct {
	payloadOut, wireOut atomic.Uint64
	payloadIn, wireIn   atomic.Uint64
}

// Out returns the bytes sent: yamux payload and WebSocket wire bytes.
func (s *Stats) Out() (payload, wire uint64) { return s.payloadOut.Load(), s.wireOut.Load() }

// In returns the bytes received: WebSocket wire bytes and the yamux payload
// they carried.
func (s *Stats) In() (payload, wire uint64) { return s.payloadIn.Load(), s.wireIn.Load() }

func (s *Stats) sent(payload, wire int) {
	if s != nil {
		s.payloadOut.Add(uint64(payload))
		s.wireOut.Add(uint64(wire))
	}
}

func (s *Stats) received(payload, wire int) {
	if s != nil {
		s.payloadIn.Add(uint64(payload))
		s.wireIn.Add(uint64(wire))
	}
}

// deflater compresses outgoing messages; the caller serialises its use
// (wsConn.writeMu).
type deflater struct {
	buf   bytes.Buffer // the current message's compressed bytes
	fw    *flate.Writer
	total uint64 // bytes compressed so far, over every message
}

// windowSize is the DEFLATE window, which the receiver's decompressor
// fills before it hands back what it decoded.
const windowSize = 32 << 10

// atWindowEdge reports whether the bytes compressed so far end exactly on
// a multiple of the window. The receiver's decompressor then hands back
// the last piece's bytes before it has read that piece's end (its window
// is full), and reads on into the next message for more: that message must
// be compressed too, or the receiver finds a raw message inside a piece
// and the session fails (found in review; TestRawAfterPieceOnWindowEdge).
func (d *deflater) atWindowEdge() bool { return d != nil && d.total > 0 && d.total%windowSize == 0 }

func newDeflater() *deflater {
	d := &deflater{}
	fw, err := flate.NewWriter(&d.buf, deflateLevel)
	if err != nil {
		panic(err) // only for an invalid level constant
	}
	d.fw = fw
	return d
}

// message compresses head and body as one message and returns it; it is
// valid until the next call.
func (d *deflater) message(head, body []byte) ([]byte, error) {
	if err := d.add(head); err != nil {
		return nil, err
	}
	if err := d.add(body); err != nil {
		return nil, err
	}
	return d.take()
}

// add compresses p into the current message. A writer that batches several
// yamux frames into one message adds each, then takes the message once.
func (d *deflater) add(p []byte) error {
	n, err := d.fw.Write(p)
	d.total += uint64(n)
	return err
}

// take ends the current message with a sync flush and returns it without
// the flush's tail; it is valid until the next add. Every byte added so far
// decodes from the messages taken.
func (d *deflater) take() ([]byte, error) {
	if err := d.fw.Flush(); err != nil {
		return nil, err
	}
	msg := d.buf.Bytes()
	d.buf.Reset() // keeps the storage: msg is valid until the next add overwrites it
	if !bytes.HasSuffix(msg, syncTail) {
		return nil, errors.New("wstun: deflate flush without its sync marker")
	}
	return msg[:len(msg)-len(syncTail)], nil
}

// inflater decompresses incoming messages: one DEFLATE stream spread over
// the compressed ones, raw messages in between passed through. Only the
// connection's single reader uses it.
//
// A raw message may only come where the DEFLATE stream is between pieces, so
// the inflater, not the decompressor, fetches each next message and looks at
// its first byte. It knows the decompressor is between pieces when the
// current piece and its tail went into the decompressor's input buffer (br)
// and that buffer is empty again: the decompressor returns a piece's last
// bytes only once it has read the tail's stored block, and out is large
// enough to take everything it has decoded (at most its 32 KiB window).
type inflater struct {
	src   messages
	br    *bufio.Reader // the decompressor's input, so its fill level is known
	fr    io.ReadCloser
	out   []byte // decoded bytes not yet returned: out[pos:end]
	pos   int
	end   int
	raw   io.Reader // the rest of a raw message, when one is being read
	stats *Stats
}

// newInflater reads messages from next, which returns the payload of the
// next binary message.
func newInflater(next func() (io.Reader, error), stats *Stats) *inflater {
	in := &inflater{src: messages{next: next, stats: stats}, out: make([]byte, 32<<10), stats: stats}
	in.br = bufio.NewReaderSize(&in.src, 4<<10)
	in.fr = flate.NewReader(in.br)
	return in
}

func (in *inflater) Read(p []byte) (int, error) {
	for {
		switch {
		case in.raw != nil:
			n, err := in.raw.Read(p)
			in.stats.received(n, n)
			if err == io.EOF {
				in.raw, err = nil, nil
			}
			if n > 0 || err != nil {
				return n, err
			}
		case in.pos < in.end:
			n := copy(p, in.out[in.pos:in.end])
			in.pos += n
			in.stats.received(n, 0)
			return n, nil
		case in.src.idle() && in.br.Buffered() == 0:
			raw, err := in.src.advance()
			if err != nil {
				return 0, err
			}
			in.raw = raw
		default:
			n, err := in.fr.Read(in.out)
			in.pos, in.end = 0, n
			if n == 0 && err != nil {
				return 0, err
			}
		}
	}
}

// rawMarker leads a message sent without compression. It has bit 0 set,
// which for a compressed message would be the first block's BFINAL: never
// set, as the stream is never closed.
const rawMarker = 0x01

// errRawInPiece is a raw message where the rest of a compressed piece was
// due: the peer broke the framing.
var errRawInPiece = errors.New("wstun: raw message inside a compressed piece")

// messages is the byte stream the decompressor reads: each compressed
// message's payload followed by the sync tail its sender cut.
type messages struct {
	next  func() (io.Reader, error)
	stats *Stats
	first [1]byte   // the payload's first byte, read to tell raw from compressed
	head  []byte    // first, while not yet delivered
	cur   io.Reader // the rest of the current payload; nil between messages
	tail  int       // bytes of syncTail still to deliver after cur
}

// idle reports whether every byte of the last message was delivered.
func (m *messages) idle() bool { return len(m.head) == 0 && m.cur == nil && m.tail == 0 }

// advance fetches the next message. A raw one is returned, without its
// marker, for the caller to pass through; a compressed one becomes the
// decompressor's input.
func (m *messages) advance() (raw io.Reader, err error) {
	for {
		r, err := m.next()
		if err != nil {
			return nil, err
		}
		n, err := io.ReadFull(r, m.first[:])
		m.stats.received(0, n)
		switch {
		case err == io.EOF:
			continue // empty: nothing to deliver
		case err != nil:
			return nil, err
		case m.first[0]&rawMarker != 0:
			return r, nil
		}
		m.head, m.cur, m.tail = m.first[:], r, len(syncTail)
		return nil, nil
	}
}

func (m *messages) Read(p []byte) (int, error) {
	for {
		switch {
		case len(m.head) > 0:
			n := copy(p, m.head)
			m.head = m.head[n:]
			return n, nil
		case m.cur != nil:
			n, err := m.cur.Read(p)
			m.stats.received(0, n)
			if err == io.EOF {
				m.cur, err = nil, nil
			}
			if n > 0 || err != nil {
				return n, err
			}
		case m.tail > 0:
			n := copy(p, syncTail[len(syncTail)-m.tail:])
			m.tail -= n
			return n, nil
		default:
			// The decompressor wants more than a whole piece: the sender
			// split a piece over messages, which the stream allows.
			raw, err := m.advance()
			if err != nil {
				return 0, err
			}
			if raw != nil {
				return 0, errRawInPiece
			}
		}
	}
}

// incompressible guesses from a sample whether compressing body would save
// little: more than half of all byte values among 256 bytes from its middle
// (random or already compressed data shows about 160, JSON and text under
// 100, base64 at most 64). Small bodies are always compressed: they are the
// events, and their back-references are the point.
func incompressible(body []byte) bool {
	const sample = 256
	if len(body) < 4*sample {
		return false
	}
	var seen [256]bool
	distinct := 0
	mid := len(body)/2 - sample/2
	for _, b := range body[mid : mid+sample] {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	return distinct > sample/2
}

// negotiated applies the outcome of the handshake to c: byte counting, and
// compressed messages both ways when compressed. Called once, before yamux
// starts on c.
func (c *wsConn) negotiated(cfg Config, compressed bool) {
	c.stats = cfg.Stats
	c.compressMinRTT = cfg.CompressMinRTT
	if compressed {
		c.compressing = true
		c.inf = newInflater(c.nextCompressed, c.stats)
	}
	c.measurePath()
}

// measurePath decides from the socket's round-trip time whether writes are
// compressed (tunnel.LongPath) and how long small writes may gather
// (coalesce.go); the session's monitor calls it on every tick, so a path
// that slows down changes within a heartbeat.
func (c *wsConn) measurePath() {
	rtt := socketRTT(c.ws.NetConn())
	if c.compressing {
		c.rawPath.Store(!tunnel.LongPath(rtt, c.compressMinRTT))
	}
	c.gatherRTT.Store(int64(pathRTT(rtt)))
}

// nextCompressed returns the next binary message's payload, skipping other
// message types as the plain path does.
func (c *wsConn) nextCompressed() (io.Reader, error) {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			c.setErr(err)
			return nil, err
		}
		c.touch()
		if typ == websocket.BinaryMessage {
			return r, nil
		}
	}
}

// readCompressed is Read on a compressed connection.
func (c *wsConn) readCompressed(p []byte) (int, error) {
	n, err := c.inf.Read(p)
	if err != nil {
		c.setErr(err)
	}
	return n, err
}

// writeCompressed sends msg[1:] as one compressed message, or as a raw one
// when it looks incompressible (compressing random bytes costs about six
// times the CPU of sending them and saves nothing) or the path is too fast
// for compression to pay. msg[0] is room for rawMarker.
func (c *wsConn) writeCompressed(msg []byte) error {
	body := msg[1:]
	switch {
	case len(body) == 0:
		// Nothing to carry. An empty piece would also leave the receiver's
		// decompressor reading on into the next message, which may be raw.
		return nil
	case (incompressible(body) || c.rawPath.Load()) && !c.z.atWindowEdge():
		return c.writeRaw(msg)
	}
	if c.z == nil {
		// Made on the first compressed write, so a session on a fast path
		// never holds the compressor's ~1 MiB (only writeLoop gets here).
		c.z = newDeflater()
	}
	out, err := c.z.message(nil, body)
	if err != nil {
		return err
	}
	c.stats.sent(len(body), len(out))
	return c.ws.WriteMessage(websocket.BinaryMessage, out)
}

// writeRaw sends msg[1:] uncompressed, after rawMarker, which it writes into
// msg[0]: one WriteMessage, no copy.
func (c *wsConn) writeRaw(msg []byte) error {
	msg[0] = rawMarker
	c.stats.sent(len(msg)-1, len(msg))
	return c.ws.WriteMessage(websocket.BinaryMessage, msg)
}
