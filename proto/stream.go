package proto

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// Writer writes frames to a stream. Each frame goes out in a single Write so
// the transport sends it as one unit; the encoding buffer is reused. Between
// Hold and Flush, frames collect in the buffer and leave together in one
// Write: one transport frame, one TLS record, one system call for what would
// otherwise be several.
// A Writer is not safe for concurrent use.
//
// A Writer holds no buffer between frames: a stream that waits minutes for
// its next event (the relay writes thousands at once) keeps none; the
// buffer comes from a pool for each frame.
type Writer struct {
	w    io.Writer
	buf  []byte
	bp   *[]byte // the pooled buffer buf came from (smallWriteBufs), nil if none
	held bool
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// holdLimit bounds what Hold collects before it writes anyway: one
// maximal Data frame and a few small ones.
const holdLimit = MaxDataFrame

// keepBuf is the encoding buffer a frame starts in: room for an SSE event.
// Bigger ones (bulk Data frames, a request with its body, a provider's
// response header) come from bigBufPool, or from the collector.
const keepBuf = 1 << 10

// smallWriteBufs holds encoding buffers of keepBuf bytes.
var smallWriteBufs = sync.Pool{New: func() any { b := make([]byte, 0, keepBuf); return &b }}

// bigBufPool holds encoding buffers for frames larger than keepBuf.
var bigBufPool = sync.Pool{New: func() any { b := make([]byte, 0, MaxDataFrame+16); return &b }}

// putBig returns b to bigBufPool if it is big enough to serve any frame.
func putBig(b []byte) {
	if cap(b) >= MaxDataFrame+16 {
		bp := new([]byte) // here, not &b: that would move b to the heap on every call
		*bp = b[:0]
		bigBufPool.Put(bp)
	}
}

// Hold makes the frames written from now on wait in the Writer until Flush
// (or until they pass holdLimit bytes). Use it for frames that are ready at
// the same moment, such as a request's header, body and End.
func (w *Writer) Hold() { w.held = true }

// Flush writes the frames collected since Hold, if any, and ends the hold.
func (w *Writer) Flush() error {
	w.held = false
	if len(w.buf) == 0 {
		return nil
	}
	return w.send()
}

// send writes the buffer unless a hold is collecting it.
func (w *Writer) send() error {
	if w.held && len(w.buf) < holdLimit {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.release()
	return err
}

// release gives the encoding buffer back to its pool.
func (w *Writer) release() {
	b := w.buf[:0]
	w.buf = nil
	if w.bp != nil && cap(b) == keepBuf {
		*w.bp = b
		smallWriteBufs.Put(w.bp)
	} else {
		putBig(b)
	}
	w.bp = nil
}

// grow makes room for n more bytes, taking a pooled buffer: a small one
// for a frame's start, a big one for a big frame.
func (w *Writer) grow(n int) {
	if cap(w.buf)-len(w.buf) >= n {
		return
	}
	switch need := len(w.buf) + n; {
	case w.buf == nil && need <= keepBuf:
		w.bp = smallWriteBufs.Get().(*[]byte)
		w.buf = (*w.bp)[:0]
	case need <= MaxDataFrame+16 && need > keepBuf:
		small, sbp := w.buf, w.bp
		w.buf = append((*bigBufPool.Get().(*[]byte))[:0], small...)
		if w.bp = nil; sbp != nil {
			*sbp = small[:0]
			smallWriteBufs.Put(sbp)
		}
	default:
		w.buf = append(w.buf, make([]byte, n)...)[:len(w.buf)]
	}
}

// WriteRequest writes a FrameRequest.
func (w *Writer) WriteRequest(h *RequestHeader) error {
	return w.writeEncoded(FrameRequest, h.Append)
}

// WriteResponse writes a FrameResponse.
func (w *Writer) WriteResponse(h *ResponseHeader) error {
	return w.writeEncoded(FrameResponse, h.Append)
}

// WriteEnd writes a FrameEnd. It ends a hold: nothing follows an End on a
// stream, so whatever was held goes now.
func (w *Writer) WriteEnd(e End) error {
	w.held = false
	return w.writeEncoded(FrameEnd, e.Append)
}

// WriteDispatched writes the empty FrameDispatched. Where the stream can
// hold a write back for company (LazyWriter), the frame goes that way: the
// edge acts on it only if the stream breaks, and on a short path the
// answer follows it at once, in the same transport message.
func (w *Writer) WriteDispatched() error {
	w.grow(1 + binary.MaxVarintLen32)
	w.buf = AppendFrameHeader(w.buf, FrameDispatched, 0)
	if lw, ok := w.w.(LazyWriter); ok && !w.held {
		_, err := lw.WriteLazy(w.buf)
		w.release()
		return err
	}
	return w.send()
}

// LazyWriter is a stream that can send bytes no peer waits on a moment
// late, with the next bytes it sends (wstun's streams on a short path):
// WriteLazy writes p as Write does, but the transport may hold it back
// briefly (about a millisecond) instead of sending it alone.
type LazyWriter interface {
	WriteLazy(p []byte) (int, error)
}

// writeEncoded encodes the payload straight into the buffer, after room
// for the longest length prefix, then writes the real prefix and moves the
// payload up against it: the length is only known after encoding.
func (w *Writer) writeEncoded(t FrameType, enc func([]byte) []byte) error {
	const room = 1 + binary.MaxVarintLen32
	w.grow(room)
	start := len(w.buf)
	w.buf = enc(append(w.buf, make([]byte, room)...))
	n := len(w.buf) - start - room
	if n > limitFor(t) {
		if w.buf = w.buf[:start]; start == 0 {
			w.release()
		}
		return fmt.Errorf("%w: %s frame of %d bytes", ErrFrameTooLarge, t, n)
	}
	head := AppendFrameHeader(w.buf[start:start], t, n)
	copy(w.buf[start+len(head):], w.buf[start+room:])
	w.buf = w.buf[:start+len(head)+n]
	return w.send()
}

// Write sends p as one or more Data frames. It implements io.Writer so body
// copies can target a Writer directly.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxDataFrame)
		w.grow(1 + binary.MaxVarintLen32 + n)
		w.buf = AppendFrame(w.buf, FrameData, p[:n])
		if err := w.send(); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Reader reads frames from a stream. A frame that fits in its read buffer
// is returned in place, without a copy.
//
// A Reader holds its read buffer only while it has bytes in it: one that
// waits for its stream's next frame with nothing buffered (an open stream
// between two events, thousands of them) gives the buffer back to the pool
// and waits for the frame's first byte alone.
type Reader struct {
	src io.Reader
	r   *bufio.Reader // from readerBufPool; nil while nothing is buffered
	buf []byte        // from bigBufPool: the last payload larger than the read buffer
	typ [1]byte       // a frame's type byte, read without a buffer
}

// readBufSize is a Reader's read buffer: room for the SSE events that
// make up most frames. Larger frames (bulk Data, big headers) are read past
// it into a pooled buffer that goes back on the next frame. The edge keeps
// one per open stream while the provider is silent, thousands of them.
const readBufSize = 1 << 10

// readerBufPool recycles the bufio readers of finished streams: one per
// stream adds up under thousands of concurrent streams.
var readerBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// NewReader returns a Reader on src. Call Release when the stream is done.
func NewReader(src io.Reader) *Reader { return &Reader{src: src} }

// Release returns the Reader's buffers to the pool; the Reader must not be
// used afterwards.
func (r *Reader) Release() {
	r.putReadBuf()
	putBig(r.buf)
	r.buf = nil
}

// readBuf is the read buffer, taken from the pool if the Reader has none.
func (r *Reader) readBuf() *bufio.Reader {
	if r.r == nil {
		r.r = readerBufPool.Get().(*bufio.Reader)
		r.r.Reset(r.src)
	}
	return r.r
}

// putReadBuf gives the read buffer back to the pool.
func (r *Reader) putReadBuf() {
	if r.r != nil {
		r.r.Reset(nil)
		readerBufPool.Put(r.r)
		r.r = nil
	}
}

// Peek returns the next n bytes without consuming them (see
// bufio.Reader.Peek); n is at most the read buffer's size.
func (r *Reader) Peek(n int) ([]byte, error) { return r.readBuf().Peek(n) }

// Next reads one frame. The payload is valid until the next call.
func (r *Reader) Next() (FrameType, []byte, error) {
	// The previous payload is no longer valid: a big buffer it was read
	// into goes back to the pool now, not when the stream ends, so a
	// long stream that once carried a big frame does not keep 64 KiB
	// while it waits for the next one.
	putBig(r.buf)
	r.buf = nil
	t, n, err := r.frameHeader()
	if err != nil {
		return t, nil, err
	}
	if n <= r.r.Size() {
		p, err := r.r.Peek(n)
		if err != nil {
			return t, nil, unexpected(err)
		}
		_, _ = r.r.Discard(n)
		return t, p, nil
	}
	var p []byte
	if n <= MaxDataFrame+16 {
		r.buf = *bigBufPool.Get().(*[]byte)
		p = r.buf[:n]
	} else {
		p = make([]byte, n) // a large header frame: not kept
	}
	if _, err := io.ReadFull(r.r, p); err != nil {
		return t, nil, unexpected(err)
	}
	return t, p, nil
}

// frameHeader reads the next frame's type and length. With nothing
// buffered it gives the read buffer back and waits for the type byte
// without one; the previous payload, which the buffer held, is no longer
// valid by now.
func (r *Reader) frameHeader() (FrameType, int, error) {
	if r.r != nil && r.r.Buffered() > 0 {
		return ReadFrameHeader(r.r)
	}
	r.putReadBuf()
	if _, err := io.ReadFull(r.src, r.typ[:]); err != nil {
		return 0, 0, err // io.EOF here is a clean end between frames
	}
	return readFrameLength(FrameType(r.typ[0]), r.readBuf())
}

// Body returns an io.Reader over the Data frames that follow, ending at the
// next End frame: io.EOF for CodeOK, the *End itself otherwise. A stream that
// stops before End yields io.ErrUnexpectedEOF. Other frame types are a
// protocol error.
func (r *Reader) Body() *BodyReader { return &BodyReader{r: r} }

// BodyReader reads a body from Data frames; see Reader.Body.
type BodyReader struct {
	r    *Reader
	rest []byte
	err  error
}

// Read implements io.Reader.
func (b *BodyReader) Read(p []byte) (int, error) {
	for len(b.rest) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		b.rest, b.err = b.next()
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

// Chunk returns the body's next bytes in place, without a copy: what is
// left of the current Data frame, else the next frame's payload. They are
// valid until the next call on b or its Reader. At the end of the body it
// returns the error Read would: io.EOF, the *End, or a stream error.
func (b *BodyReader) Chunk() ([]byte, error) {
	for len(b.rest) == 0 {
		if b.err != nil {
			return nil, b.err
		}
		b.rest, b.err = b.next()
	}
	p := b.rest
	b.rest = nil
	return p, nil
}

// EndsNext reports whether the body ends after the bytes Chunk returned
// last, as a whole answer ends: nothing of them is left, and the next frame,
// already buffered, is an End with CodeOK. It reads nothing and keeps those
// bytes valid, so a caller may learn, before it writes them, that they are
// the last (the edge then sends them with the answer's end, in one write).
func (b *BodyReader) EndsNext() bool {
	if len(b.rest) > 0 {
		return false
	}
	if b.err != nil {
		return b.err == io.EOF
	}
	return b.r.bufferedEndOK()
}

// bufferedEndOK reports whether the read buffer holds a whole End frame
// with CodeOK next. It peeks only at bytes already buffered: no read, and
// no move of the buffer under a payload Next returned.
func (r *Reader) bufferedEndOK() bool {
	if r.r == nil {
		return false
	}
	n := r.r.Buffered()
	if n == 0 {
		return false
	}
	head, _ := r.r.Peek(min(n, 1+binary.MaxVarintLen32))
	if FrameType(head[0]) != FrameEnd {
		return false
	}
	size, k := binary.Uvarint(head[1:])
	if k <= 0 || size > uint64(n-1-k) {
		return false
	}
	frame, _ := r.r.Peek(1 + k + int(size))
	end, err := ParseEnd(frame[1+k:])
	return err == nil && end.Code == CodeOK
}

// next returns the next Data payload or the error that ends the body.
func (b *BodyReader) next() ([]byte, error) {
	t, p, err := b.r.Next()
	switch {
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	case t == FrameData:
		return p, nil
	case t == FrameEnd:
		end, err := ParseEnd(p)
		if err != nil {
			return nil, err
		}
		if end.Code == CodeOK {
			return nil, io.EOF
		}
		return nil, end
	}
	return nil, fmt.Errorf("%w: unexpected %s frame in body", ErrMalformed, t)
}
