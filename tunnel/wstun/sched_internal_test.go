package wstun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// frameOf builds a whole yamux frame: header of typ/flags for stream id and
// a body of n bytes for data frames.
func frameOf(typ byte, flags uint16, id uint32, n int) []byte {
	f := make([]byte, yamuxHeaderLen+n)
	f[1] = typ
	binary.BigEndian.PutUint16(f[2:], flags)
	binary.BigEndian.PutUint32(f[4:], id)
	binary.BigEndian.PutUint32(f[8:], uint32(n))
	return f
}

// describe names a frame for test messages: type, stream, flags, length.
func describe(f []byte) string {
	names := map[byte]string{yamuxTypeData: "data", yamuxTypeWindowUpdate: "wnd", yamuxTypePing: "ping", yamuxTypeGoAway: "goaway"}
	s := fmt.Sprintf("%s/%d", names[f[1]], binary.BigEndian.Uint32(f[4:]))
	if fl := binary.BigEndian.Uint16(f[2:]); fl != 0 {
		s += fmt.Sprintf("+%d", fl)
	}
	if f[1] == yamuxTypeData {
		s += fmt.Sprintf(":%d", len(f)-yamuxHeaderLen)
	}
	return s
}

// TestSchedOrder pushes frames as yamux would queue them behind bulk data
// and checks the order the writer takes them in.
func TestSchedOrder(t *testing.T) {
	const syn, fin = 1, yamuxFlagFIN
	bulk := func(id uint32) []byte { return frameOf(yamuxTypeData, 0, id, writeChunk) }
	tests := []struct {
		name string
		// warm sends this much on each stream listed before the pushes, so
		// they count as bulk.
		warm   []uint32
		pushes [][]byte
		want   []string
	}{
		{
			name:   "window update overtakes queued bulk",
			warm:   []uint32{1},
			pushes: [][]byte{bulk(1), bulk(1), frameOf(yamuxTypeWindowUpdate, 0, 1, 0)},
			want:   []string{"wnd/1", "data/1:16384", "data/1:16384"},
		},
		{
			name: "new stream's SYN and first bytes overtake older streams' bulk, which goes oldest first",
			warm: []uint32{1, 3},
			pushes: [][]byte{bulk(1), bulk(3), bulk(1), bulk(3),
				frameOf(yamuxTypeWindowUpdate, syn, 5, 0), frameOf(yamuxTypeData, 0, 5, 300)},
			want: []string{"wnd/5+1", "data/5:300", "data/1:16384", "data/1:16384", "data/3:16384", "data/3:16384"},
		},
		{
			name:   "ping and go-away first",
			warm:   []uint32{1},
			pushes: [][]byte{bulk(1), frameOf(yamuxTypePing, syn, 0, 0), frameOf(yamuxTypeGoAway, 0, 0, 0)},
			want:   []string{"ping/0+1", "goaway/0", "data/1:16384"},
		},
		{
			name:   "FIN stays behind its stream's data",
			warm:   []uint32{1},
			pushes: [][]byte{bulk(1), frameOf(yamuxTypeWindowUpdate, fin, 1, 0), frameOf(yamuxTypeWindowUpdate, 0, 7, 0)},
			want:   []string{"wnd/7", "data/1:16384", "wnd/1+4"},
		},
		{
			name: "a fresh stream turns bulk after freshBytes and waits for older bulk",
			warm: []uint32{1},
			pushes: [][]byte{bulk(1), frameOf(yamuxTypeData, 0, 3, freshBytes),
				frameOf(yamuxTypeData, 0, 3, 10), bulk(1)},
			want: []string{"data/3:2048", "data/1:16384", "data/1:16384", "data/3:10"},
		},
		{
			name: "fresh streams take turns",
			pushes: [][]byte{frameOf(yamuxTypeData, 0, 5, 1000), frameOf(yamuxTypeData, 0, 5, 1000),
				frameOf(yamuxTypeData, 0, 7, 1000), frameOf(yamuxTypeData, 0, 7, 1000)},
			want: []string{"data/5:1000", "data/7:1000", "data/5:1000", "data/7:1000"},
		},
		{
			name:   "bulk: oldest stream first, whatever the push order",
			warm:   []uint32{9, 3, 5},
			pushes: [][]byte{bulk(9), bulk(5), bulk(3), bulk(9), bulk(3)},
			want:   []string{"data/3:16384", "data/3:16384", "data/5:16384", "data/9:16384", "data/9:16384"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSched()
			for _, id := range tt.warm {
				mustPush(t, q, frameOf(yamuxTypeData, 0, id, freshBytes))
				if f := q.next(); f == nil {
					t.Fatal("warm-up frame not taken")
				}
			}
			for _, f := range tt.pushes {
				mustPush(t, q, f)
			}
			var got []string
			for f := q.next(); f != nil; f = q.next() {
				got = append(got, describe(f))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("order\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func mustPush(t *testing.T, q *sched, f []byte) {
	t.Helper()
	if err := q.push(f); err != nil {
		t.Fatalf("push: %v", err)
	}
}

// TestSchedRoom checks the per-stream bound: room is withheld once a stream
// has streamQueueLimit bytes queued, given back when the writer takes some,
// and given to everyone when the queue closes.
func TestSchedRoom(t *testing.T) {
	q := newSched()
	if q.room(1) != nil {
		t.Fatal("an unknown stream has no room")
	}
	for range streamQueueLimit / writeChunk {
		mustPush(t, q, frameOf(yamuxTypeData, 0, 1, writeChunk))
	}
	room := q.room(1)
	if room == nil {
		t.Fatal("a full stream has room")
	}
	if q.room(3) != nil {
		t.Fatal("another stream waits for the full one")
	}
	select {
	case <-room:
		t.Fatal("room before the writer took anything")
	default:
	}
	if f := q.next(); f == nil {
		t.Fatal("nothing to take")
	}
	select {
	case <-room:
	default:
		t.Fatal("no room after the writer took a chunk")
	}
	mustPush(t, q, frameOf(yamuxTypeData, 0, 1, writeChunk))
	room = q.room(1)
	if room == nil {
		t.Fatal("full again, yet room")
	}
	q.close(nil)
	select {
	case <-room:
	default:
		t.Fatal("close did not release the waiting stream")
	}
	if err := q.push(frameOf(yamuxTypePing, 0, 0, 0)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("push after close = %v, want net.ErrClosed", err)
	}
	n := 0
	for q.wait() {
		batch, _ := q.take(nil, batchBytes)
		n += len(batch)
	}
	if n != 2 {
		t.Fatalf("drained %d frames after close, want the 2 queued", n)
	}
}

// TestSchedForgetsEndedStreams checks that a stream's state goes with its
// FIN, so the map does not grow with every stream a session ever had.
func TestSchedForgetsEndedStreams(t *testing.T) {
	q := newSched()
	for id := uint32(1); id < 200; id += 2 {
		mustPush(t, q, frameOf(yamuxTypeData, 0, id, 10))
		mustPush(t, q, frameOf(yamuxTypeWindowUpdate, yamuxFlagFIN, id, 0))
	}
	for q.next() != nil {
	}
	if len(q.streams) != 0 {
		t.Fatalf("%d streams remembered after their FIN", len(q.streams))
	}
	// Forgotten with frames queued: kept until they are taken, in order.
	mustPush(t, q, frameOf(yamuxTypeData, 0, 201, 10))
	mustPush(t, q, frameOf(yamuxTypeData, 0, 201, 20))
	q.forget(201)
	for _, want := range []int{10, 20} {
		if f := q.next(); len(f) != yamuxHeaderLen+want {
			t.Fatalf("took %q, want the %d-byte frame", describe(f), want)
		}
	}
	if len(q.streams) != 0 {
		t.Fatalf("%d streams remembered after a forgotten stream's frames were taken", len(q.streams))
	}
}

// BenchmarkSchedPushTake is the scheduler's cost per frame with 256 streams
// taking turns.
func BenchmarkSchedPushTake(b *testing.B) {
	q := newSched()
	frames := make([][]byte, 256)
	for i := range frames {
		frames[i] = frameOf(yamuxTypeData, 0, uint32(2*i+1), 200)
	}
	var batch [][]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := q.push(frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
		if i%16 == 15 {
			batch, _ = q.take(batch[:0], batchBytes)
		}
	}
}

// TestSchedForgetsPeerResetStreams: yamux sends nothing when a stream the
// peer reset is closed, so the queue must forget the stream on Close, not
// wait for a FIN that never comes.
func TestSchedForgetsPeerResetStreams(t *testing.T) {
	p := newSSEPair(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), negotiateTimeout)
	defer cancel()
	st, err := p.edge.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	peer, err := p.relay.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The relay's yamux sends RST itself only after its close timeout or
	// for a refused open; put one on the wire the same way.
	id := uint32(peer.ID())
	if err := p.relay.(*session).conn.q.push(frameOf(yamuxTypeWindowUpdate, yamuxFlagRST, id, 0)); err != nil {
		t.Fatal(err)
	}
	st.SetReadDeadline(time.Now().Add(negotiateTimeout))
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, tunnel.ErrStreamReset) {
		t.Fatalf("edge read after the relay's RST: %v, want ErrStreamReset", err)
	}
	st.Close()
	c := p.edge.(*session).conn
	waitTaken(t, c) // the request may still be queued: forgotten once taken
	q := c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if s := q.streams[id]; s != nil {
		t.Fatalf("stream %d remembered after Close of a reset stream (%d frames queued)", id, len(s.frames))
	}
}
