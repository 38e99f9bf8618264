package wstun

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/strait/strait/tunnel/tunneltest"
)

// dataFrame is a whole yamux data frame of n body bytes on stream id.
func dataFrame(id uint32, n int) []byte {
	f := make([]byte, yamuxHeaderLen+n)
	binary.BigEndian.PutUint32(f[4:], id)
	binary.BigEndian.PutUint32(f[8:], uint32(n))
	return f
}

// TestSmallWritesGather: on a long path small batches are paced: the first
// leaves at once, and small frames of other streams that come within the
// pace of it wait for each other and leave together once they fill a
// segment (or the pace runs out, or the connection closes); one stream's
// frames following each other do not wait. On a short path, or with the
// window unknown, nothing waits. The pace here is an hour, so a frame that
// should not wait but did makes the test fail rather than pass late.
func TestSmallWritesGather(t *testing.T) {
	small1, small2, small3, big := dataFrame(1, 100), dataFrame(3, 100), dataFrame(7, 100), dataFrame(5, segmentFill)
	const hour = time.Hour
	for _, tc := range []struct {
		name     string
		rtt      time.Duration // the path's, for pacing (0: short path)
		cwnd     int           // -1: unknown
		writes   [][]byte
		messages [][][]byte // the first messages, frame by frame
		close    bool       // close the connection after the writes
	}{
		{name: "paced: gathered up to a segment", rtt: hour, cwnd: 1,
			writes: [][]byte{small1, small2, small3, big}, messages: [][][]byte{{small1}, {small2, small3, big}}},
		{name: "paced: closing sends what gathered", rtt: hour, cwnd: 1,
			writes: [][]byte{small1, small2}, messages: [][][]byte{{small1}, {small2}}, close: true},
		{name: "one stream's frames do not wait for each other", rtt: hour, cwnd: 1,
			writes: [][]byte{small1, dataFrame(1, 50)}, messages: [][][]byte{{small1}, {dataFrame(1, 50)}}},
		{name: "a big batch does not wait", rtt: hour, cwnd: 1,
			writes: [][]byte{small1, big}, messages: [][][]byte{{small1}, {big}}},
		{name: "short path", rtt: 0, cwnd: 1, writes: [][]byte{small1, small2}, messages: [][][]byte{{small1}, {small2}}},
		{name: "window unknown", rtt: hour, cwnd: -1, writes: [][]byte{small1, small2}, messages: [][][]byte{{small1}, {small2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, got := recordingPeer(t)
			c := newWSConn(ws)
			c.window = func() (int, bool) { return tc.cwnd, tc.cwnd >= 0 }
			c.gatherRTT.Store(int64(tc.rtt))
			expectMessages(t, c, got, tc.writes, tc.messages, tc.close)
		})
	}
}

// expectMessages writes frames to c one at a time (each taken by the writer
// before the next, so only the writer's own waiting puts them together),
// checks that the first messages the peer gets are messages, frame by
// frame, and closes c (before reading them, when closeFirst).
func expectMessages(t *testing.T, c *wsConn, got <-chan []byte, frames [][]byte, messages [][][]byte, closeFirst bool) {
	t.Helper()
	for _, f := range frames {
		var err error
		if f[0]&lazyMark != 0 { // written lazily (markedLazy)
			plain := append([]byte{f[0] &^ lazyMark}, f[1:]...)
			err = c.WriteLazyFrame(plain[:yamuxHeaderLen], plain[yamuxHeaderLen:])
		} else {
			_, err = c.Write(f)
		}
		if err != nil {
			t.Fatal(err)
		}
		waitTaken(t, c)
	}
	closed := make(chan error, 1)
	if closeFirst {
		go func() { closed <- c.Close() }()
	}
	for i, want := range messages {
		select {
		case msg := <-got:
			if w := bytes.Join(want, nil); !bytes.Equal(msg, w) {
				t.Fatalf("message %d has %d bytes; want %d (%d frames)", i, len(msg), len(w), len(want))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not sent", i)
		}
	}
	if !closeFirst {
		go func() { closed <- c.Close() }()
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for range got { // the peer's reader is done
	}
}

// waitTaken waits until the writer has taken everything queued.
func waitTaken(t *testing.T, c *wsConn) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		c.q.mu.Lock()
		empty := len(c.q.urgent) == 0 && c.q.fresh.len() == 0 && c.q.bulk.Len() == 0
		c.q.mu.Unlock()
		if empty {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer took nothing")
		}
		runtime.Gosched()
	}
}

// TestSmallPace: small batches are paced only on paths of gatherMinRTT
// and more, a window's worth per round trip, at most maxGather apart.
func TestSmallPace(t *testing.T) {
	for _, tc := range []struct {
		rtt  time.Duration
		cwnd int
		want time.Duration
	}{
		{pathRTT(2 * time.Millisecond), 10, 0},
		{pathRTT(0), 10, 0},
		{pathRTT(gatherMinRTT), 10, time.Millisecond},
		{pathRTT(150 * time.Millisecond), 10, maxGather},
		{pathRTT(150 * time.Millisecond), 100, 1500 * time.Microsecond},
		{pathRTT(150 * time.Millisecond), 0, 0},
	} {
		if got := smallPace(tc.rtt, tc.cwnd); got != tc.want {
			t.Errorf("smallPace(%v, %d) = %v; want %v", tc.rtt, tc.cwnd, got, tc.want)
		}
	}
}

// windowUpdate is a yamux window update on stream id with flags.
func windowUpdate(id uint32, flags uint16) []byte {
	f := make([]byte, yamuxHeaderLen)
	f[1] = yamuxTypeWindowUpdate
	binary.BigEndian.PutUint16(f[2:], flags)
	binary.BigEndian.PutUint32(f[4:], id)
	return f
}

// markedLazy is frame f as expectMessages should write it: with
// WriteLazyFrame. The message that carries it has f itself.
func markedLazy(f []byte) []byte { return append([]byte{f[0] | lazyMark}, f[1:]...) }

// TestLazyFrames: on a short path an ACK, a FIN-only window update or a
// data frame written lazily waits for the next frame and leaves with it,
// in one message; alone, it leaves when its hold runs out or the
// connection closes. A SYN, a reset, a pure window update and data never
// wait. The hold here is an hour unless the case says otherwise, so a frame
// that should not wait but did makes the test fail rather than pass late.
func TestLazyFrames(t *testing.T) {
	ack, fin := windowUpdate(3, yamuxFlagACK), windowUpdate(5, yamuxFlagFIN)
	syn, rst, credit := windowUpdate(7, yamuxFlagSYN), windowUpdate(9, yamuxFlagRST|yamuxFlagFIN), windowUpdate(11, 0)
	data, dispatched := dataFrame(3, 40), dataFrame(3, 2)
	for _, tc := range []struct {
		name     string
		hold     time.Duration
		writes   [][]byte
		messages [][][]byte
		close    bool
	}{
		{name: "an ACK leaves with the stream's first bytes", hold: time.Hour, writes: [][]byte{ack, data}, messages: [][][]byte{{ack, data}}},
		{name: "a FIN leaves with the next stream's SYN", hold: time.Hour, writes: [][]byte{fin, ack, syn}, messages: [][][]byte{{fin, ack, syn}}},
		{name: "closing sends a held frame", hold: time.Hour, writes: [][]byte{fin}, messages: [][][]byte{{fin}}, close: true},
		{name: "a held frame leaves when its hold runs out", hold: time.Millisecond, writes: [][]byte{fin}, messages: [][][]byte{{fin}}},
		{name: "a reset does not wait", hold: time.Hour, writes: [][]byte{rst, data}, messages: [][][]byte{{rst}, {data}}},
		{name: "a pure window update does not wait", hold: time.Hour, writes: [][]byte{credit, data}, messages: [][][]byte{{credit}, {data}}},
		{name: "a SYN does not wait", hold: time.Hour, writes: [][]byte{syn, data}, messages: [][][]byte{{syn}, {data}}},
		{name: "a lazy data frame leaves with the stream's next bytes", hold: time.Hour,
			writes: [][]byte{ack, markedLazy(dispatched), data}, messages: [][][]byte{{ack, dispatched, data}}},
		{name: "a lazy data frame alone leaves when its hold runs out, unmarked", hold: time.Millisecond,
			writes: [][]byte{markedLazy(dispatched)}, messages: [][][]byte{{dispatched}}},
		{name: "closing sends a lazy data frame", hold: time.Hour,
			writes: [][]byte{markedLazy(dispatched)}, messages: [][][]byte{{dispatched}}, close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws, got := recordingPeer(t)
			c := newWSConn(ws)
			c.lazyWait.Store(int64(tc.hold))
			expectMessages(t, c, got, tc.writes, tc.messages, tc.close)
		})
	}
}

// TestWriteLazyOverASession: bytes a stream writes lazily reach the peer
// in order with what follows them, compressed or not (the frame's lazy
// mark never reaches the wire: the peer's yamux would refuse its version),
// and alone, once the hold runs out.
func TestWriteLazyOverASession(t *testing.T) {
	for _, compression := range []string{"off", "deflate"} {
		t.Run(compression, func(t *testing.T) {
			cfg := Config{HandshakeTimeout: 5 * time.Second, Compression: compression}
			edge, relay := loopbackPair(t, tunneltest.Listen(t), cfg, cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			out, err := edge.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			expect := func(in io.Reader, want string) {
				t.Helper()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(in, got); err != nil || string(got) != want {
					t.Fatalf("read %q, %v; want %q", got, err, want)
				}
			}
			if _, err := out.Write([]byte("request;")); err != nil {
				t.Fatal(err)
			}
			in, err := relay.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			expect(in, "request;")
			lw := out.(interface{ WriteLazy([]byte) (int, error) })
			if _, err := lw.WriteLazy([]byte("dispatched;")); err != nil {
				t.Fatal(err)
			}
			if _, err := out.Write([]byte("answer;")); err != nil {
				t.Fatal(err)
			}
			expect(in, "dispatched;answer;")
			if _, err := lw.WriteLazy([]byte("alone;")); err != nil {
				t.Fatal(err)
			}
			expect(in, "alone;")
		})
	}
}
