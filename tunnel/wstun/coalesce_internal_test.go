package wstun

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
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
			for _, f := range tc.writes {
				if _, err := c.Write(f); err != nil {
					t.Fatal(err)
				}
				waitTaken(t, c) // one at a time: only pacing puts them together
			}
			closed := make(chan error, 1)
			if tc.close {
				go func() { closed <- c.Close() }()
			}
			for i, frames := range tc.messages {
				select {
				case msg := <-got:
					if want := bytes.Join(frames, nil); !bytes.Equal(msg, want) {
						t.Fatalf("message %d has %d bytes; want %d (%d frames)", i, len(msg), len(want), len(frames))
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("message %d not sent", i)
				}
			}
			if !tc.close {
				go func() { closed <- c.Close() }()
			}
			if err := <-closed; err != nil {
				t.Fatal(err)
			}
			for range got { // the peer's reader is done
			}
		})
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
