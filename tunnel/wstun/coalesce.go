package wstun

// Small writes on a long path.
//
// A session that has carried little (new, or only probes and a few streams)
// has the congestion window TCP starts with: ten segments, counted in
// segments, not bytes. A burst of new streams then makes many small frames
// in a few tens of milliseconds (on the relay: each stream's ACK,
// Dispatched, response head and first events, each a few hundred bytes at
// most). Written as they come, each takes a segment of its own; the window
// is gone after the first few streams, and every later stream's first
// bytes wait a round trip for acknowledgements. In the lab (250 ms, 32
// fresh clients on two sessions) that was the streams past the fourth to
// sixth on each session: time to first token 480-500 ms instead of 255.
//
// So on a long path the writer paces small batches: one leaves at most every
// round trip / congestion window (a window's worth of them per round trip,
// at most maxGather apart), and frames that come in between wait to go with
// it, until they fill a segment. A window of ten segments then carries a
// burst's first bytes in a handful of segments instead of running out; a
// large window paces every few milliseconds or not at all. Short paths
// (under gatherMinRTT) never wait.

import (
	"encoding/binary"
	"net"
	"slices"
	"syscall"
	"time"
)

const (
	// gatherMinRTT is the shortest path on which small writes are paced: on
	// a short one the acknowledgements come back before a burst is over.
	gatherMinRTT = 10 * time.Millisecond
	// maxGather bounds the pace, whatever the round trip and window.
	maxGather = 10 * time.Millisecond
	// segmentFill is what a batch needs to go without waiting: about a
	// segment's payload after the TLS and WebSocket headers.
	segmentFill = 1200
)

// pathRTT is the round trip on which small writes are paced: rtt on a long
// path, zero on a short or unknown one.
func pathRTT(rtt time.Duration) time.Duration {
	if rtt < gatherMinRTT {
		return 0
	}
	return rtt
}

// smallPace is how far apart small batches go: the round trip shared by
// the segments of the window, at most maxGather.
func smallPace(rtt time.Duration, cwnd int) time.Duration {
	if rtt <= 0 || cwnd <= 0 {
		return 0
	}
	return min(rtt/time.Duration(cwnd), maxGather)
}

// gatherTime is how long the writer should hold batch for more frames:
// until smallPace after the last write when batch is under a segment on a
// long path and carries a stream the last write did not, else zero. A
// stream's own frames following each other (one client's response head and
// first events) thus never wait: pacing is for many streams at once.
func (c *wsConn) gatherTime(batch [][]byte, last *lastStreams, lastWrite, now time.Time) time.Duration {
	rtt := time.Duration(c.gatherRTT.Load())
	if rtt <= 0 || c.window == nil || batchSize(batch) >= segmentFill || last.covers(batch) {
		return 0
	}
	cwnd, known := c.window()
	if !known {
		return 0
	}
	return lastWrite.Add(smallPace(rtt, cwnd)).Sub(now)
}

// lastStreams is the streams of the writer's last message (up to a few).
type lastStreams struct {
	ids  [4]uint32
	n    int
	many bool // more than len(ids): covers nothing
}

// frameStream is the stream id in a yamux frame header (0: the session).
func frameStream(f []byte) uint32 { return binary.BigEndian.Uint32(f[4:8]) }

// set records the streams of batch.
func (l *lastStreams) set(batch [][]byte) {
	l.n, l.many = 0, false
	for _, f := range batch {
		id := frameStream(f)
		if id == 0 || slices.Contains(l.ids[:l.n], id) {
			continue
		}
		if l.n == len(l.ids) {
			l.many = true
			return
		}
		l.ids[l.n] = id
		l.n++
	}
}

// covers reports whether every stream of batch was in the last message
// (session frames, on stream 0, count as covered).
func (l *lastStreams) covers(batch [][]byte) bool {
	if l.many {
		return false
	}
	for _, f := range batch {
		if id := frameStream(f); id != 0 && !slices.Contains(l.ids[:l.n], id) {
			return false
		}
	}
	return true
}

func batchSize(batch [][]byte) int {
	n := 0
	for _, f := range batch {
		n += len(f)
	}
	return n
}

// rawSocket is c's TCP socket, for reading its state (TCP_INFO), or nil
// when c is not (over) a TCP connection.
func rawSocket(c net.Conn) syscall.RawConn {
	tc := tcpConn(c)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
