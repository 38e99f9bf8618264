package proto

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestDecodeAllocBound feeds the decoders forged payloads whose counts and
// lengths claim as much as the decoder's plausibility checks let through (or
// far more), backed by bytes that repeat one tiny entry, are garbage, or are
// real. Allocation must follow the bytes actually decoded, never the claims:
//
//   - a claimed count or length backed by repeats or garbage costs next to
//     nothing (before the header map's size hint was capped, a 1 MiB Request
//     frame of repeated empty entries allocated, and kept, a 48 MiB map);
//   - a claimed value count is pre-allocated, 16 bytes (one string header)
//     per value, each of which needs at least one payload byte;
//   - a header of real, distinct, short names costs at most allocFactor
//     bytes per payload byte, which is what http.Header's map takes.
func TestDecodeAllocBound(t *testing.T) {
	reqPrefix := []byte{Version, 0, 0, 0, 0, 0, 0} // version and six empty strings
	resPrefix := []byte{0xc8, 0x01}                // status 200

	// forgedHeader returns prefix + header count + filler, with the count
	// as large as the decoder's plausibility check lets through (two bytes
	// per entry). For a Request the last byte is left for BodyLen, so that
	// zero filler makes a valid payload.
	forgedHeader := func(prefix []byte, size int, filler func(b []byte) []byte) []byte {
		left := size - len(prefix) - binary.PutUvarint(make([]byte, binary.MaxVarintLen64), uint64(size/2))
		if prefix[0] == Version {
			left--
		}
		p := binary.AppendUvarint(append([]byte{}, prefix...), uint64(left/2))
		return filler(p)[:size]
	}
	zeros := func(b []byte) []byte { return append(b, make([]byte, 1<<21)...) }
	garbage := func(b []byte) []byte { return append(b, bytes.Repeat([]byte{0xff}, 1<<21)...) }
	// distinct fills with "\x02xy\x00" entries: distinct two-byte names
	// without values, the costliest real header per payload byte.
	distinct := func(b []byte) []byte {
		for i := 0; len(b) < 1<<21; i++ {
			b = append(b, 2, byte(i), byte(i>>8), 0)
		}
		return b
	}
	forgedValues := func(prefix []byte, size int) []byte {
		p := append(append([]byte{}, prefix...), 1, 1, 'A') // one entry "A"
		p = binary.AppendUvarint(p, uint64(size-len(p)-4))
		return append(p, bytes.Repeat([]byte{0xff}, size)...)[:size]
	}
	request := func(p []byte) error { _, err := ParseRequestHeader(p); return err }
	response := func(p []byte) error { _, err := ParseResponseHeader(p); return err }
	end := func(p []byte) error { _, err := ParseEnd(p); return err }

	for _, size := range []int{4 << 10, 64 << 10, MaxHeaderFrame} {
		tests := []struct {
			name    string
			decode  func([]byte) error
			p       []byte
			perByte int // allowed bytes allocated per payload byte
		}{
			{"request: max count, repeated empty entries", request, forgedHeader(reqPrefix, size, zeros), 1},
			{"request: max count, garbage", request, forgedHeader(reqPrefix, size, garbage), 1},
			{"request: huge count", request, append(binary.AppendUvarint(append([]byte{}, reqPrefix...), 1<<62), make([]byte, size)...), 1},
			{"request: string longer than payload", request, append(binary.AppendUvarint([]byte{Version}, uint64(size)), make([]byte, size-4)...), 1},
			{"request: max value count, garbage", request, forgedValues(reqPrefix, size), 17},
			{"request: max count, distinct names", request, forgedHeader(reqPrefix, size, distinct), allocFactor},
			{"response: max count, repeated empty entries", response, forgedHeader(resPrefix, size, zeros), 1},
			{"response: max count, garbage", response, forgedHeader(resPrefix, size, garbage), 1},
			{"response: max value count, garbage", response, forgedValues(resPrefix, size), 17},
			{"response: max count, distinct names", response, forgedHeader(resPrefix, size, distinct), allocFactor},
			{"end: message longer than payload", end, append(binary.AppendUvarint([]byte{6}, uint64(size)), make([]byte, size-4)...), 1},
		}
		for _, tt := range tests {
			_ = tt.decode(tt.p) // warm up: nothing lazily initialised is counted
			limit := uint64(tt.perByte*len(tt.p) + allocSlack)
			if got := leastAllocated(func() { _ = tt.decode(tt.p) }, limit, 3); got > limit {
				t.Errorf("%s (%d bytes): allocated %d bytes (%.1f per byte), limit %d",
					tt.name, len(tt.p), got, float64(got)/float64(len(tt.p)), limit)
			}
		}
	}
}

// TestFrameTooLargeAllocatesNothing checks that an over-limit frame is
// rejected from its length prefix alone, before any payload buffer exists.
func TestFrameTooLargeAllocatesNothing(t *testing.T) {
	for _, typ := range []FrameType{FrameRequest, FrameResponse, FrameData, FrameEnd, FrameDispatched, 0x7f} {
		in := binary.AppendUvarint([]byte{byte(typ)}, 1<<40)
		br := bufio.NewReader(bytes.NewReader(in))
		var err error
		n := allocated(func() { _, _, err = ReadFrame(br, nil) }) // not repeatable: it consumes br
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("%s: err = %v, want ErrFrameTooLarge", typ, err)
		}
		if n > 1<<10 {
			t.Errorf("%s: rejecting a 1 TiB frame allocated %d bytes", typ, n)
		}
	}
}
