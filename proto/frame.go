package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameType identifies a frame on a stream.
type FrameType uint8

// Frame types. Values are part of the wire format: never renumber.
const (
	FrameRequest    FrameType = 0x01 // edge → relay: RequestHeader
	FrameResponse   FrameType = 0x02 // relay → edge: ResponseHeader
	FrameData       FrameType = 0x03 // body bytes, either direction
	FrameEnd        FrameType = 0x04 // End, either direction
	FrameDispatched FrameType = 0x05 // relay → edge: empty; request went upstream
)

func (t FrameType) String() string {
	switch t {
	case FrameRequest:
		return "request"
	case FrameResponse:
		return "response"
	case FrameData:
		return "data"
	case FrameEnd:
		return "end"
	case FrameDispatched:
		return "dispatched"
	case FramePing:
		return "ping"
	case FramePong:
		return "pong"
	case FrameGoAway:
		return "goaway"
	}
	return fmt.Sprintf("frame(0x%02x)", uint8(t))
}

// Size limits. Headers are small; body frames are bounded so that one frame
// never holds a reader for long and buffers stay poolable.
const (
	MaxHeaderFrame = 1 << 20  // Request and Response payloads
	MaxDataFrame   = 64 << 10 // Data payloads; writers split larger chunks
)

// ErrFrameTooLarge reports a frame whose declared length exceeds the limit.
var ErrFrameTooLarge = errors.New("proto: frame too large")

// AppendFrameHeader appends the type and length prefix of a frame whose
// payload of n bytes follows.
func AppendFrameHeader(b []byte, t FrameType, n int) []byte {
	b = append(b, byte(t))
	return binary.AppendUvarint(b, uint64(n))
}

// AppendFrame appends a whole frame.
func AppendFrame(b []byte, t FrameType, payload []byte) []byte {
	return append(AppendFrameHeader(b, t, len(payload)), payload...)
}

// ReadFrameHeader reads a frame's type and payload length. It rejects a
// length above the limit for that frame type before reading the payload.
func ReadFrameHeader(r *bufio.Reader) (FrameType, int, error) {
	tb, err := r.ReadByte()
	if err != nil {
		return 0, 0, err // io.EOF here is a clean end between frames
	}
	return readFrameLength(FrameType(tb), r)
}

// readFrameLength reads the payload length of a frame of type t, whose
// type byte was read.
func readFrameLength(t FrameType, r *bufio.Reader) (FrameType, int, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, 0, unexpected(err)
	}
	if n > uint64(limitFor(t)) {
		return t, 0, fmt.Errorf("%w: %s frame of %d bytes", ErrFrameTooLarge, t, n)
	}
	return t, int(n), nil
}

// ReadFrame reads one frame, reusing buf for the payload when it is large
// enough. The returned payload aliases buf or a new slice; it is valid until
// the next call that reuses the same buf.
func ReadFrame(r *bufio.Reader, buf []byte) (FrameType, []byte, error) {
	t, n, err := ReadFrameHeader(r)
	if err != nil {
		return t, nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return t, nil, unexpected(err)
	}
	return t, buf, nil
}

func limitFor(t FrameType) int {
	switch t {
	case FrameRequest, FrameResponse:
		return MaxHeaderFrame
	case FrameData:
		return MaxDataFrame
	default:
		return 4 << 10 // End and Dispatched carry at most a short message
	}
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF: the peer
// stopped mid-frame, which is never a clean end.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
