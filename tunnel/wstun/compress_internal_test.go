package wstun

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// codec is a deflater feeding an inflater through an in-memory queue of
// messages, as the two ends of a compressed session do through a WebSocket.
type codec struct {
	d     *deflater
	in    *inflater
	queue [][]byte
	rd    bytes.Reader // the message being read, reused to avoid allocations
	stats Stats
}

func newCodec() *codec {
	c := &codec{d: newDeflater()}
	c.in = newInflater(c.next, &c.stats)
	return c
}

// next hands the inflater the oldest queued message; an empty queue is the
// peer hanging up.
func (c *codec) next() (io.Reader, error) {
	if len(c.queue) == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	c.rd.Reset(c.queue[0])
	c.queue = c.queue[:copy(c.queue, c.queue[1:])] // keeps the capacity
	return &c.rd, nil
}

// send turns one write (head may be nil) into a queued message as
// wsConn.writeCompressed does: raw when body looks incompressible.
func (c *codec) send(tb testing.TB, head, body []byte) int {
	tb.Helper()
	switch {
	case len(head)+len(body) == 0:
		return 0
	case incompressible(body) && !c.d.atWindowEdge():
		msg := append(append([]byte{rawMarker}, head...), body...)
		c.queue = append(c.queue, msg)
		return len(msg)
	}
	msg, err := c.d.message(head, body)
	if err != nil {
		tb.Fatalf("compress: %v", err)
	}
	c.queue = append(c.queue, bytes.Clone(msg))
	return len(msg)
}

// receive reads exactly n decompressed bytes.
func (c *codec) receive(tb testing.TB, buf []byte) {
	tb.Helper()
	if _, err := io.ReadFull(c.in, buf); err != nil {
		tb.Fatalf("decompress: %v", err)
	}
}

// TestDeflateRoundTrip sends sequences of writes through one compressed
// direction and checks that the receiver reads back exactly the bytes sent,
// each message decoding on its own (nothing waits for a later message: the
// queue would be empty and the read would fail).
func TestDeflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	event := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok"}}]}` + "\n\n")
	type write struct{ head, body []byte }
	cases := []struct {
		name   string
		writes []write
	}{
		{"one small", []write{{nil, []byte("hi")}}},
		{"one byte", []write{{nil, []byte{0}}}},
		{"header and body", []write{{yamuxHeader(yamuxTypeData, uint32(len(event))), event}}},
		{"repeated events", repeat(write{yamuxHeader(yamuxTypeData, uint32(len(event))), event}, 200)},
		{"all byte values", []write{{nil, allBytes}, {nil, allBytes}}},
		{"binary 1 MiB", []write{{nil, random(1 << 20)}}},
		{"zeros 1 MiB", []write{{nil, make([]byte, 1<<20)}}},
		{"text 200 KiB", []write{{nil, []byte(strings.Repeat("the quick brown fox ", 10<<10))}}},
		// A frame's header and body in separate messages, and a frame cut at
		// odd places: the stream, not the message, is the unit.
		{"frame split across messages", []write{
			{nil, yamuxHeader(yamuxTypeData, uint32(len(event)))}, {nil, event[:7]}, {nil, event[7:]}}},
		{"mixed sizes", []write{
			{nil, random(3)}, {yamuxHeader(1, 65536), nil}, {nil, random(70 << 10)}, {nil, event},
			{nil, random(1)}, {nil, bytes.Repeat(event, 300)}, {nil, random(33 << 10)}}},
		{"empty write", []write{{nil, nil}, {nil, []byte("after")}}},
		{"empty write before raw", []write{{nil, []byte("before")}, {nil, nil}, {nil, random(4 << 10)}}},
		// Incompressible bodies travel raw, outside the DEFLATE stream, between
		// compressed pieces whose back-references must still resolve.
		{"raw between compressed", []write{
			{nil, event}, {yamuxHeader(yamuxTypeData, 8<<10), random(8 << 10)}, {nil, event},
			{nil, random(100 << 10)}, {nil, random(100 << 10)}, {nil, event}, {nil, bytes.Repeat(event, 100)},
			{nil, random(2 << 10)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCodec()
			for i, w := range tc.writes {
				want := append(bytes.Clone(w.head), w.body...)
				c.send(t, w.head, w.body)
				if len(want) == 0 {
					continue // nothing to read; the next write's read covers it
				}
				got := make([]byte, len(want))
				c.receive(t, got)
				if !bytes.Equal(got, want) {
					t.Fatalf("write %d: got %d bytes differing from the %d sent", i, len(got), len(want))
				}
				if len(c.queue) != 0 {
					t.Fatalf("write %d: %d messages left unread", i, len(c.queue))
				}
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// eventFrames turns streams of SSE events into the writes a relay session
// makes: per event one yamux data frame (header, then a proto Data frame:
// type, uvarint length, event), the streams interleaved event by event, each
// stream's first frame preceded by its 12-byte window-update ACK.
func eventFrames(streams [][][]byte) [][2][]byte {
	var out [][2][]byte
	for i := 0; ; i++ {
		more := false
		for s, events := range streams {
			if i >= len(events) {
				continue
			}
			more = true
			id := uint32(2*s + 2)
			if i == 0 {
				ack := yamuxHeader(1, 0)
				binary.BigEndian.PutUint32(ack[4:], id)
				out = append(out, [2][]byte{nil, ack})
			}
			body := binary.AppendUvarint([]byte{3}, uint64(len(events[i])))
			body = append(body, events[i]...)
			head := yamuxHeader(yamuxTypeData, uint32(len(body)))
			binary.BigEndian.PutUint32(head[4:], id)
			out = append(out, [2][]byte{head, body})
		}
		if !more {
			return out
		}
	}
}

// TestDeflatePerMessageAllocs checks that a warm session compresses and
// decompresses an event without allocating.
func TestDeflatePerMessageAllocs(t *testing.T) {
	frames := eventFrames(sseStreams(t, families[0], 4, 20))
	c := newCodec()
	buf := make([]byte, 64<<10)
	i := 0
	step := func() {
		f := frames[i%len(frames)]
		i++
		msg, err := c.d.message(f[0], f[1])
		if err != nil {
			t.Fatal(err)
		}
		c.queue = append(c.queue[:0], msg)
		if _, err := io.ReadFull(c.in, buf[:len(f[0])+len(f[1])]); err != nil {
			t.Fatal(err)
		}
	}
	for range len(frames) { // warm up: buffers grow to their working size
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Errorf("compress+decompress of one event: %v allocations, want 0", n)
	}
}

// BenchmarkDeflateEvent is the CPU cost per event of a warm session: each
// family's events from 16 interleaved streams, compressed and decompressed
// one yamux write at a time. wire/payload is the compressed share of the
// yamux bytes (WebSocket, TLS and TCP overhead excluded; see
// BenchmarkTunnelBytes for those).
func BenchmarkDeflateEvent(b *testing.B) {
	for _, fam := range families {
		b.Run(fam.Name, func(b *testing.B) {
			frames := eventFrames(sseStreams(b, fam, 16, 50))
			c := newCodec()
			buf := make([]byte, 64<<10)
			var payload, wire int
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f := frames[i%len(frames)]
				msg, err := c.d.message(f[0], f[1])
				if err != nil {
					b.Fatal(err)
				}
				c.queue = append(c.queue[:0], msg)
				n := len(f[0]) + len(f[1])
				if _, err := io.ReadFull(c.in, buf[:n]); err != nil {
					b.Fatal(err)
				}
				payload += n
				wire += len(msg)
			}
			b.ReportMetric(float64(wire)/float64(payload), "wire/payload")
			b.ReportMetric(float64(payload)/float64(b.N), "payload-B/op")
		})
	}
}

// TestIncompressible checks the guess that sends a body raw: random bytes
// yes; SSE, JSON, text, base64 and small bodies no.
func TestIncompressible(t *testing.T) {
	random := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{7}).Read(random)
	b64 := make([]byte, base64.StdEncoding.EncodedLen(len(random)))
	base64.StdEncoding.Encode(b64, random)
	event := []byte(`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello"}}` + "\n\n")
	for _, tc := range []struct {
		name string
		body []byte
		want bool
	}{
		{"random", random, true},
		{"small random", random[:900], false},
		{"events", bytes.Repeat(event, 100), false},
		{"text", []byte(strings.Repeat("the quick brown fox jumps over the lazy dog ", 100)), false},
		{"base64 of random", b64, false},
		{"zeros", make([]byte, 8<<10), false},
	} {
		if got := incompressible(tc.body); got != tc.want {
			t.Errorf("%s: incompressible = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRawAfterPieceOnWindowEdge: an incompressible write after compressed
// ones whose bytes end exactly on the 32 KiB window goes compressed, since
// the receiver's decompressor reads on into the next message there; a raw
// one would end the session (errRawInPiece). Next to the edge, and past
// it, raw messages pass as before.
func TestRawAfterPieceOnWindowEdge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	if !incompressible(random) {
		t.Fatal("want an incompressible write")
	}
	text := []byte(strings.Repeat(`data: {"id":"x","delta":{"content":"tok"}}`+"\n\n", 2000))
	for _, split := range [][]int{
		{windowSize}, {100, windowSize - 100}, {20000, 12000, 768}, {windowSize, windowSize},
		{windowSize - 1}, {windowSize + 1},
	} {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			c := newCodec()
			off := 0
			for _, n := range split {
				body := text[off : off+n]
				off += n
				c.send(t, nil, body)
				got := make([]byte, n)
				c.receive(t, got)
				if !bytes.Equal(got, body) {
					t.Fatal("a compressed write came back different")
				}
			}
			c.send(t, nil, random)
			got := make([]byte, len(random))
			c.receive(t, got)
			if !bytes.Equal(got, random) {
				t.Fatal("the incompressible write came back different")
			}
		})
	}
}
