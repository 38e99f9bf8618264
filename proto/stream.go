package proto

import (
	"bufio"
	"fmt"
	"io"
	"sync"
)

// Writer writes frames to a stream. Each frame goes out in a single Write so
// the transport sends it as one unit; the encoding buffer is reused.
// A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (w *Writer) flush() error {
	_, err := w.w.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// WriteRequest writes a FrameRequest.
func (w *Writer) WriteRequest(h *RequestHeader) error {
	return w.writeEncoded(FrameRequest, h.Append)
}

// WriteResponse writes a FrameResponse.
func (w *Writer) WriteResponse(h *ResponseHeader) error {
	return w.writeEncoded(FrameResponse, h.Append)
}

// WriteEnd writes a FrameEnd.
func (w *Writer) WriteEnd(e End) error {
	return w.writeEncoded(FrameEnd, e.Append)
}

// WriteDispatched writes the empty FrameDispatched.
func (w *Writer) WriteDispatched() error {
	w.buf = AppendFrameHeader(w.buf[:0], FrameDispatched, 0)
	return w.flush()
}

// writeEncoded encodes the payload after a placeholder, then writes the real
// prefix; the payload length is only known after encoding.
func (w *Writer) writeEncoded(t FrameType, enc func([]byte) []byte) error {
	payload := enc(nil)
	if len(payload) > limitFor(t) {
		return fmt.Errorf("%w: %s frame of %d bytes", ErrFrameTooLarge, t, len(payload))
	}
	w.buf = AppendFrame(w.buf[:0], t, payload)
	return w.flush()
}

// Write sends p as one or more Data frames. It implements io.Writer so body
// copies can target a Writer directly.
func (w *Writer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), MaxDataFrame)
		w.buf = AppendFrame(w.buf[:0], FrameData, p[:n])
		if err := w.flush(); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// Reader reads frames from a stream.
type Reader struct {
	r   *bufio.Reader
	buf []byte
}

// readerBufPool recycles the bufio readers of finished streams: one per
// stream adds up under hundreds of concurrent streams.
var readerBufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// NewReader returns a Reader on r. Call Release when the stream is done.
func NewReader(r io.Reader) *Reader {
	br := readerBufPool.Get().(*bufio.Reader)
	br.Reset(r)
	return &Reader{r: br}
}

// Release returns the Reader's buffer to the pool; the Reader must not be
// used afterwards.
func (r *Reader) Release() {
	if r.r != nil {
		r.r.Reset(nil)
		readerBufPool.Put(r.r)
		r.r = nil
	}
}

// Next reads one frame. The payload is valid until the next call.
func (r *Reader) Next() (FrameType, []byte, error) {
	t, p, err := ReadFrame(r.r, r.buf)
	if cap(p) > cap(r.buf) && cap(p) <= MaxDataFrame {
		r.buf = p[:0] // keep data-sized buffers; drop oversized header buffers
	}
	return t, p, err
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
