package quictun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/quic-go/quic-go"
)

// Stream compression ("zstd1"). Across a lossy border QUIC's NewReno window
// bounds each session to about ten packets per round trip (150 ms, 3 %
// random loss: ~90 KB/s), and an SSE
// event of a few bytes of text travels as 150-300 bytes of JSON that repeats
// itself. Each small write on a stream is therefore compressed on its own
// with zstd against a built-in dictionary of the three API families' event
// shapes (zdict.go): no state per stream or per session, no event waits for
// the next, and a lost packet delays only its own stream as before.
//
// Wire format, when both ends negotiated alpnZstd1: each direction of a
// tunnel stream is a sequence of chunks,
//
//	0x00 uvarint(n) n bytes          raw: the bytes as written
//	0x01 uvarint(m) m bytes          zstd: one frame without its magic number
//
// A raw chunk's bytes are delivered as they arrive, so a stream that ends
// inside one (its writer timed out, then closed) ends cleanly after the
// bytes that did arrive, exactly as an uncompressed stream would.
//
// Without the token (an edge or relay that predates it, or compression
// "off") the stream bytes are the application's bytes, unchanged.

// alpnZstd1 is offered before ALPN by ends that compress: the relay's TLS
// picks the first of its own protocols that the edge offers, so an old peer
// on either side negotiates ALPN and plain streams.
const alpnZstd1 = ALPN + "+zstd1"

// Chunk kinds.
const (
	chunkRaw  byte = 0x00
	chunkZstd byte = 0x01
)

const (
	// zMinWrite: below this a zstd frame's own header (about 6 bytes)
	// leaves nothing to gain.
	zMinWrite = 24
	// zMaxWrite is the largest write compressed: SSE events, response
	// heads, small JSON bodies and requests. Bulk writes go raw, streamed
	// without a copy (a base64 embedding or a file gains little, and a
	// raw chunk keeps partial writes and flow control exactly as plain).
	// It also bounds what a reader buffers for one chunk.
	zMaxWrite = 16 << 10
	// smallRaw: raw writes up to this size are copied behind their
	// header into one write, so header and bytes share a STREAM frame.
	smallRaw = 4 << 10
)

// zstdMagic starts every zstd frame; it is not sent.
var zstdMagic = [4]byte{0x28, 0xb5, 0x2f, 0xfd}

// Compression settings (Config.Compression).
const (
	CompressionZstd = "zstd" // the default: compress when the peer supports it
	CompressionOff  = "off"  // behave as a peer that predates compression
)

// ValidCompression checks a Config.Compression value; empty means zstd.
func ValidCompression(s string) error {
	switch s {
	case "", CompressionZstd, CompressionOff:
		return nil
	}
	return fmt.Errorf("quictun: compression %q: want %s or %s", s, CompressionZstd, CompressionOff)
}

// CompressionSetting maps the binaries' one `compression` setting (deflate
// or off, named after the WebSocket transport's method) to
// Config.Compression: off turns QUIC's compression off as well, anything
// else keeps the default.
func CompressionSetting(s string) string {
	if s == CompressionOff {
		return CompressionOff
	}
	return ""
}

// zEntropyMin is the smallest write whose literals are Huffman-coded.
//
// Below it the encoder sends literals as they are. A Huffman table costs
// more to build and to describe than it saves on a few hundred bytes of
// literals: on the SSE events of every family and on a unary request's and
// answer's frames the chunks come out as large with it as without
// (TestSmallWritesSkipHuffman), while building and then discarding the
// table was half of each encode; encoding was 8–13 % of each tier's CPU at
// the lab's loopback max rate (issue 13), and BenchmarkUnaryChunk halves
// without the table (9.6 -> 5.1 us). Only novel prose gains from it in a small
// write (a 165-byte request carrying 100 fresh characters: 116 bytes with,
// 135 without); from zEntropyMin on, where the gain is real, it is used as
// before. Either way the frames are standard zstd: the peer's decoder
// reads both.
const zEntropyMin = 1 << 10

// zcodec is the process's encoders and decoder.
type zcodec struct {
	enc   *zstd.Encoder // writes of zEntropyMin bytes and more
	small *zstd.Encoder // smaller writes: literals without Huffman coding
	dec   *zstd.Decoder
}

// codec is the process's one zcodec: EncodeAll and DecodeAll are safe for
// concurrent use and keep their working state in internal pools, so
// streams own no compressor state. Built on first use.
var codec = sync.OnceValue(func() *zcodec {
	dict := []byte(zstdDict1)
	newEnc := func(entropy bool) *zstd.Encoder {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false),
			zstd.WithEncoderDictRaw(0, dict), zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(zMaxWrite*2),
			zstd.WithNoEntropyCompression(!entropy))
		if err != nil {
			panic("quictun: zstd encoder options: " + err.Error()) // constant options: a programming error
		}
		return enc
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDictRaw(0, dict), zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(zMaxWrite), zstd.WithDecoderMaxWindow(zMaxWrite*2), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic("quictun: zstd decoder options: " + err.Error())
	}
	return &zcodec{enc: newEnc(true), small: newEnc(false), dec: dec}
})

// encoder is the encoder for a write of n bytes.
func (c *zcodec) encoder(n int) *zstd.Encoder {
	if n < zEntropyMin {
		return c.small
	}
	return c.enc
}

// bufPool holds buffers of zMaxWrite+chunk header capacity, used only
// for the moment of one encode or decode, or while a reader's caller has
// not yet taken a decoded chunk.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, zMaxWrite+16); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { *b = (*b)[:0]; bufPool.Put(b) }

// encodeChunk returns p as one zstd chunk, or nil when that is not smaller
// than a raw chunk. The caller returns the buffer with putBuf.
func encodeChunk(p []byte) *[]byte {
	scratch := getBuf()
	defer putBuf(scratch)
	z := codec().encoder(len(p)).EncodeAll(p, *scratch)
	*scratch = z[:0] // keep a grown buffer for the pool
	body := z[len(zstdMagic):]
	if len(body)+4 >= len(p) {
		return nil
	}
	out := getBuf()
	b := append((*out)[:0], chunkZstd)
	b = binary.AppendUvarint(b, uint64(len(body)))
	*out = append(b, body...)
	return out
}

// writeChunked is Write on a stream of a compressing session; the caller
// holds writeMu. It returns how many of p's bytes the peer will read, with
// the partial-write semantics of a plain stream: a zstd chunk is queued
// whole or not at all, and a raw chunk cut by a deadline resumes on the
// next Write.
func (s *stream) writeChunked(p []byte) (int, error) {
	if len(s.hdrLeft) > 0 { // a raw chunk's header cut by a deadline
		n, err := s.st.Write(s.hdrLeft)
		s.hdrLeft = s.hdrLeft[n:]
		if err != nil {
			return 0, err
		}
	}
	total := 0
	if s.rawLeft > 0 { // an earlier write timed out inside its raw chunk
		k := min(len(p), s.rawLeft)
		n, err := s.st.Write(p[:k])
		s.rawLeft -= n
		total += n
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	if len(p) == 0 {
		return total, nil
	}
	if len(p) >= zMinWrite && len(p) <= zMaxWrite && s.compressNow() {
		if b := encodeChunk(p); b != nil {
			err := s.tryWrite(*b)
			putBuf(b)
			if err == nil {
				return total + len(p), nil
			}
			if !errors.Is(err, quic.ErrWouldBlock) {
				return total, err
			}
			// No flow-control credit for the whole chunk: the reader is
			// behind. Send raw, blocking as a plain stream would.
		}
	}
	n, err := s.writeRaw(p)
	return total + n, err
}

// tryWrite queues b whole, or nothing: quic.ErrWouldBlock when the flow
// control windows do not have room for all of it.
func (s *stream) tryWrite(b []byte) error {
	// TryWriteAll ignores the write deadline; an empty Write checks it (and
	// whether the stream is still writable) without sending anything.
	if _, err := s.st.Write(nil); err != nil {
		return err
	}
	return s.st.TryWriteAll(b)
}

// writeRaw sends p as one raw chunk. A header cut short is kept in hdrLeft
// and the rest of p's chunk is counted in rawLeft, both resumed by the next
// Write; what the peer reads is exactly the bytes reported written.
func (s *stream) writeRaw(p []byte) (int, error) {
	h := binary.AppendUvarint(append(s.hdr[:0], chunkRaw), uint64(len(p)))
	s.rawLeft = len(p)
	var n int
	var err error
	if len(p) <= smallRaw {
		b := getBuf()
		*b = append(append((*b)[:0], h...), p...)
		n, err = s.st.Write(*b)
		putBuf(b)
	} else if n, err = s.st.Write(h); n == len(h) {
		var m int
		m, err = s.st.Write(p)
		n += m
	}
	if n < len(h) {
		s.hdrLeft = h[n:]
		return 0, err
	}
	s.rawLeft -= n - len(h)
	return n - len(h), err
}

// zreader turns a compressing stream's chunks back into its bytes. Its
// buffers are small while the stream waits: chunk headers and small chunks
// land in head, a larger chunk borrows a pooled buffer only until it is
// decoded, raw bytes go straight to the caller.
type zreader struct {
	head    [128]byte
	in      []byte  // read from the stream, not yet parsed: in head or *big
	big     *[]byte // pooled, while a chunk larger than head is collected
	out     []byte  // decoded, not yet returned: in *outBuf
	outBuf  *[]byte
	rawLeft int  // bytes of the current raw chunk still to deliver
	eof     bool // the stream's FIN was read
}

var errCorrupt = errors.New("quictun: malformed compressed stream")

// read reads from src (the QUIC stream) into p.
func (z *zreader) read(src io.Reader, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(z.out) > 0 {
			n := copy(p, z.out)
			z.out = z.out[n:]
			if len(z.out) == 0 {
				putBuf(z.outBuf)
				z.out, z.outBuf = nil, nil
			}
			return n, nil
		}
		if z.rawLeft > 0 {
			return z.readRaw(src, p)
		}
		if done, err := z.parse(); err != nil {
			return 0, err
		} else if done {
			continue
		}
		if z.eof {
			if len(z.in) == 0 || z.in[0] == chunkRaw {
				return 0, io.EOF // a raw chunk's header cut by the writer's deadline, then a FIN
			}
			return 0, fmt.Errorf("%w: stream ended inside a chunk", io.ErrUnexpectedEOF)
		}
		if err := z.fill(src); err != nil {
			return 0, err
		}
	}
}

// readRaw delivers bytes of the current raw chunk.
func (z *zreader) readRaw(src io.Reader, p []byte) (int, error) {
	p = p[:min(len(p), z.rawLeft)]
	if len(z.in) > 0 {
		n := copy(p, z.in)
		z.consume(n)
		z.rawLeft -= n
		return n, nil
	}
	if z.eof {
		return 0, io.EOF // the writer stopped inside the chunk: a clean end, as on a plain stream
	}
	n, err := src.Read(p)
	z.rawLeft -= n
	if errors.Is(err, io.EOF) {
		z.eof = true
	}
	return n, err
}

// parse takes one whole chunk off the front of in, if there is one: a raw
// chunk's header (its bytes follow) or a zstd chunk, decoded into out.
func (z *zreader) parse() (bool, error) {
	if len(z.in) < 2 {
		return false, nil
	}
	size, k := binary.Uvarint(z.in[1:])
	if k == 0 {
		return false, nil
	}
	if k < 0 {
		return false, errCorrupt
	}
	switch z.in[0] {
	case chunkRaw:
		z.consume(1 + k)
		z.rawLeft = int(min(size, 1<<62))
		return true, nil
	case chunkZstd:
		if size == 0 || size > zMaxWrite {
			return false, fmt.Errorf("%w: zstd chunk of %d bytes", errCorrupt, size)
		}
		need := 1 + k + int(size)
		if len(z.in) < need {
			z.reserve(need)
			return false, nil
		}
		if err := z.decode(z.in[1+k : need]); err != nil {
			return false, err
		}
		z.consume(need)
		return true, nil
	}
	return false, fmt.Errorf("%w: chunk kind 0x%02x", errCorrupt, z.in[0])
}

func (z *zreader) decode(body []byte) error {
	frame := getBuf()
	*frame = append(append((*frame)[:0], zstdMagic[:]...), body...)
	out := getBuf()
	b, err := codec().dec.DecodeAll(*frame, (*out)[:0])
	putBuf(frame)
	if err != nil || len(b) == 0 {
		putBuf(out)
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	z.out, z.outBuf = b, out
	return nil
}

// reserve makes room for a chunk of need bytes from the front of in.
func (z *zreader) reserve(need int) {
	if need <= len(z.head) || z.big != nil {
		return
	}
	z.big = getBuf()
	z.in = append((*z.big)[:0], z.in...)
}

// fill reads what the stream has into the free end of in.
func (z *zreader) fill(src io.Reader) error {
	buf := z.head[:]
	if z.big != nil {
		buf = (*z.big)[:cap(*z.big)]
	}
	if len(z.in) > 0 && &z.in[0] != &buf[0] { // move the unparsed bytes to the front
		z.in = buf[:copy(buf, z.in)]
	} else {
		z.in = buf[:len(z.in)]
	}
	n, err := src.Read(buf[len(z.in):])
	z.in = buf[:len(z.in)+n]
	if errors.Is(err, io.EOF) {
		z.eof = true
		return nil
	}
	if n > 0 {
		return nil // any other error comes back on the next read
	}
	return err
}

// consume drops n parsed bytes; a borrowed buffer goes back once empty.
func (z *zreader) consume(n int) {
	z.in = z.in[n:]
	if len(z.in) == 0 {
		z.in = nil
		if z.big != nil {
			putBuf(z.big)
			z.big = nil
		}
	}
}
