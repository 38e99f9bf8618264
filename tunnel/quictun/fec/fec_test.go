package fec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tenTwo is the shape the tests that count frames of groups are written
// for: groups of 10 data and 2 parity frames.
var tenTwo = Shape{Data: 10, Parity: 2}

// lossy drops the frames its drop function picks, before they reach the
// socket: drop sees the frame's number (0, 1, ...) and header.
type lossy struct {
	net.PacketConn
	n    atomic.Int64
	drop func(n int, h header) bool
}

func (l *lossy) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := int(l.n.Add(1) - 1)
	if h, ok := parseHeader(b); ok && l.drop(n, h) {
		return len(b), nil
	}
	return l.PacketConn.WriteTo(b, addr)
}

func udp(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// link is a sending Conn (Always) whose frames pass through drop, and a
// receiving Conn (Answer) whose datagrams are reported on got.
type link struct {
	tx, rx *Conn
	to     net.Addr
	got    chan []byte
	done   chan struct{}
}

func newLink(t testing.TB, shape Shape, flush time.Duration, drop func(int, header) bool) *link {
	t.Helper()
	rxUDP := udp(t)
	tx, err := NewConn(&lossy{PacketConn: udp(t), drop: drop}, Always, shape)
	if err != nil {
		t.Fatal(err)
	}
	tx.flushDelay = flush
	rx, err := NewConn(rxUDP, Answer, Shape{})
	if err != nil {
		t.Fatal(err)
	}
	l := &link{tx: tx, rx: rx, to: rxUDP.LocalAddr(), got: make(chan []byte, 4096), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		b := make([]byte, 2048)
		for {
			n, _, err := rx.ReadFrom(b)
			if err != nil {
				return
			}
			l.got <- append([]byte(nil), b[:n]...)
		}
	}()
	t.Cleanup(func() {
		tx.Close()
		rx.Close()
		<-l.done
	})
	return l
}

// flushNow does what the flush timer does to c's round towards to, at a
// moment of the test's choosing (tests that call it set the timer off).
func flushNow(c *Conn, to net.Addr) {
	p := c.lookup(to)
	if p == nil {
		return
	}
	p.smu.Lock()
	defer p.smu.Unlock()
	if p.tx != nil {
		p.tx.due = time.Now()
		p.tx.flush()
	}
}

// datagram i: its number, then filler of a length that varies with i.
func datagram(i int) []byte {
	b := make([]byte, 4+(i*97)%1400)
	binary.BigEndian.PutUint32(b, uint32(i))
	for j := 4; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

// exchange sends datagrams 0..count-1, at most ahead of what has arrived
// (the socket buffer would drop a faster flood), and returns what arrived,
// by number, once every datagram not in lost has.
func (l *link) exchange(t *testing.T, count, ahead int, lost map[int]bool) map[int]int {
	t.Helper()
	got := map[int]int{}
	want := count - len(lost)
	receive := func() {
		select {
		case b := <-l.got:
			i := int(binary.BigEndian.Uint32(b))
			if string(b) != string(datagram(i)) {
				t.Fatalf("datagram %d arrived altered (%d bytes)", i, len(b))
			}
			got[i]++
		case <-time.After(30 * time.Second): // a failure bound, not a wait
			t.Fatalf("after %d of %d datagrams: nothing more arrived", len(got), want)
		}
	}
	for i := range count {
		for i-len(got) > ahead {
			receive()
		}
		if _, err := l.tx.WriteTo(datagram(i), l.to); err != nil {
			t.Fatal(err)
		}
	}
	for len(got) < want {
		receive()
	}
	return got
}

// TestRecovery: up to M lost frames of a group are rebuilt, byte-exact,
// whether data or parity, alone or in a burst, in a full group or in one
// that the flush timer closed; more than M are not, and nothing arrives
// twice.
func TestRecovery(t *testing.T) {
	// 400 datagrams fill whole rounds of 4 groups (of 10 or 20); the
	// flush timer is off so that a slow moment of a loaded machine cannot
	// close a group early and shift the frames the cases pick.
	const count = 400
	var first *uint32 // the first group's id (ids start at random); data frames are sent by the test alone
	firstGroup := func(h header) bool {
		if first == nil {
			first = &h.group
		}
		return h.group == *first
	}
	tests := []struct {
		name  string
		shape Shape
		drop  func(n int, h header) bool
		lost  map[int]bool // datagrams that must never arrive
	}{
		{"no loss", tenTwo, func(int, header) bool { return false }, nil},
		{"one data frame per group", tenTwo, func(_ int, h header) bool {
			return h.kind == kindData && h.index == int(h.group%10)
		}, nil},
		{"two data frames per group", tenTwo, func(_ int, h header) bool {
			return h.kind == kindData && (h.index == 2 || h.index == 9)
		}, nil},
		{"a data and a parity frame per group", tenTwo, func(_ int, h header) bool {
			return (h.kind == kindData && h.index == 5) || (h.kind == kindParity && h.index == 10)
		}, nil},
		{"M=3: three data frames per group", Shape{Data: 10, Parity: 3}, func(_ int, h header) bool {
			return h.kind == kindData && h.index%4 == 1
		}, nil},
		{"the default shape: four data frames per group", DefaultShape, func(_ int, h header) bool {
			return h.kind == kindData && h.index%5 == 1
		}, nil},
		// Consecutive frames belong to different groups, parity frames
		// included, so a burst of 8 costs each group at most 2 frames.
		{"bursts of 8 frames", tenTwo, func(n int, _ header) bool { return n%100 >= 92 }, nil},
		// Datagrams 0, 4, 8 are data 0-2 of the first group (interleave 4).
		{"three of one group: beyond M", tenTwo, func(_ int, h header) bool {
			return h.kind == kindData && h.index < 3 && firstGroup(h)
		}, map[int]bool{0: true, 4: true, 8: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLink(t, tt.shape, time.Hour, tt.drop)
			got := l.exchange(t, count, 64, tt.lost)
			// One more datagram, sent plain past the losses (its first
			// byte is 0, no FEC kind): once it is in, every frame sent
			// before it has been read.
			if _, err := l.tx.pc.(*lossy).PacketConn.WriteTo(datagram(count), l.to); err != nil {
				t.Fatal(err)
			}
			for b := range l.got {
				i := int(binary.BigEndian.Uint32(b))
				got[i]++
				if i == count {
					break
				}
			}
			for i := range count + 1 {
				want := 1
				if tt.lost[i] {
					want = 0
				}
				if got[i] != want {
					t.Errorf("datagram %d arrived %d times, want %d", i, got[i], want)
				}
			}
			if sent := l.tx.Stats().DataSent; sent != count {
				t.Errorf("sender sent %d data frames for %d datagrams", sent, count)
			}
			// Every group but the last few has left the receiver's window.
			if n := l.rx.Stats().Unrecovered; n != uint64(len(tt.lost)) {
				t.Errorf("Unrecovered = %d, want %d", n, len(tt.lost))
			}
			t.Logf("receiver: %+v", l.rx.Stats())
		})
	}
}

// TestFlushProtectsALoneDatagram: a datagram with nothing after it is
// protected too: its group is closed by the timer and its lost data frame
// rebuilt from the parity.
func TestFlushProtectsALoneDatagram(t *testing.T) {
	l := newLink(t, tenTwo, FlushDelay, func(_ int, h header) bool { return h.kind == kindData })
	if _, err := l.tx.WriteTo(datagram(7), l.to); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-l.got:
		if string(b) != string(datagram(7)) {
			t.Fatalf("got %d bytes, want datagram 7", len(b))
		}
	case <-time.After(30 * time.Second): // a failure bound, not a wait
		t.Fatalf("datagram 7 never arrived; receiver: %+v", l.rx.Stats())
	}
	if s := l.rx.Stats(); s.Recovered != 1 {
		t.Errorf("Recovered = %d, want 1", s.Recovered)
	}
}

// TestSmallGroupParity: a group closed early gets as many parity frames as
// a full one, or as it has data frames if fewer, so it survives that many
// losses and never sends more parity than data.
func TestSmallGroupParity(t *testing.T) {
	tests := []struct {
		data, parity int // the group closed early, and its parity frames
	}{{1, 1}, {2, 2}, {3, 3}, {5, 4}, {9, 4}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d data", tt.data), func(t *testing.T) {
			// The timer is the test's: the first round of width 1 (one
			// datagram, closed at once) narrows the next to one group.
			parity := make(chan header, 64)
			l := newLink(t, Shape{Data: 20, Parity: 4}, time.Hour, func(n int, h header) bool {
				if h.kind == kindParity {
					parity <- h
				}
				// Every data frame of the group under test is lost.
				return h.kind == kindData && n > 1
			})
			flush := func() { flushNow(l.tx, l.to) }
			if _, err := l.tx.WriteTo(datagram(0), l.to); err != nil {
				t.Fatal(err)
			}
			flush() // a group of one: one parity frame; the next round has width 1
			if h := <-parity; h.b != 1 {
				t.Fatalf("a group of 1 got %d parity frames, want 1", h.b)
			}
			<-l.got
			for i := 1; i <= tt.data; i++ {
				if _, err := l.tx.WriteTo(datagram(i), l.to); err != nil {
					t.Fatal(err)
				}
			}
			flush()
			if h := <-parity; h.a != tt.data || h.b != tt.parity {
				t.Fatalf("group of %d data with %d parity; want %d with %d", h.a, h.b, tt.data, tt.parity)
			}
			if tt.data > tt.parity {
				return // more lost than parity: nothing to rebuild, by design
			}
			for range tt.data {
				select {
				case <-l.got:
				case <-time.After(30 * time.Second): // a failure bound, not a wait
					t.Fatalf("lost data not rebuilt; receiver: %+v", l.rx.Stats())
				}
			}
			if s := l.rx.Stats(); s.Recovered != uint64(tt.data) {
				t.Errorf("Recovered = %d, want %d", s.Recovered, tt.data)
			}
		})
	}
}

// TestWidthFollowsRate: a round closed by the timer before its groups
// filled makes the next round use fewer groups, so slow traffic does not
// pay its parity frames per datagram; a round that fills widens it again.
func TestWidthFollowsRate(t *testing.T) {
	parity := make(chan header, 64)
	l := newLink(t, tenTwo, time.Hour, func(_ int, h header) bool {
		if h.kind == kindParity {
			parity <- h
		}
		return false
	})
	flush := func() { flushNow(l.tx, l.to) }
	send := func(n int) {
		for i := range n {
			if _, err := l.tx.WriteTo(datagram(i), l.to); err != nil {
				t.Fatal(err)
			}
		}
	}
	groups := func(frames int) map[int]int { // data shards of each group, by parity frame
		got := map[int]int{}
		for range frames {
			h := <-parity
			got[int(h.group)] = h.a
		}
		return got
	}
	send(3) // width 4: three groups of one datagram, one parity frame each
	flush()
	if g := groups(3); len(g) != 3 {
		t.Fatalf("first round: %v; want 3 groups of 1", g)
	}
	send(3) // width 1: one group of three
	flush()
	for _, n := range groups(2) {
		if n != 3 {
			t.Fatalf("second round: a group of %d; want 3", n)
		}
	}
	send(10) // fills the group: closed at once, two parity frames, width 2
	if g := groups(2); len(g) != 1 {
		t.Fatalf("third round: %v; want one full group", g)
	}
	send(20) // width 2: two full groups
	if g := groups(4); len(g) != 2 {
		t.Fatalf("fourth round: %v; want two full groups", g)
	}
}

// TestParityFirstIsNotFEC: a parity frame alone (lost data, or forged)
// does not make an answering Conn speak FEC to its sender: it carries no
// shape to answer in. It used to, with a zero shape, and the flush timer
// then divided by zero and took the relay down.
func TestParityFirstIsNotFEC(t *testing.T) {
	relayUDP := udp(t)
	relay, err := NewConn(relayUDP, Answer, Shape{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	forger, other := udp(t), udp(t)
	defer forger.Close()
	defer other.Close()
	f := make([]byte, headerLen+lenLen+20)
	putHeader(f, kindParity, 7, 2, 2, 1) // parity 0 of a group of 2 data + 1
	if _, err := forger.WriteTo(f, relayUDP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	// A plain datagram from another address ends the read, after the
	// parity frame (one socket, in order).
	if _, err := other.WriteTo([]byte("\x41next"), relayUDP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2048)
	if n, _, err := relay.ReadFrom(b); err != nil || string(b[:n]) != "\x41next" {
		t.Fatalf("relay read %q, %v; want the plain datagram", b[:n], err)
	}
	if _, err := relay.WriteTo([]byte("\x41answer"), forger.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if n, _, err := forger.ReadFrom(b); err != nil || string(b[:n]) != "\x41answer" {
		t.Fatalf("parity-only peer read %q, %v; want the answer plain", b[:n], err)
	}
}

// TestPlainPassesThrough: datagrams that are not FEC frames pass both
// ways unchanged, and an answering Conn answers a peer in FEC only after
// that peer has spoken FEC.
func TestPlainPassesThrough(t *testing.T) {
	relayUDP := udp(t)
	relay, err := NewConn(relayUDP, Answer, Shape{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	plain := udp(t)
	defer plain.Close()
	edge, err := NewConn(udp(t), Always, DefaultShape)
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	quicLike := append([]byte{0x40}, "short header"...)
	b := make([]byte, 2048)

	// The plain peer speaks first: it gets plain answers.
	if _, err := plain.WriteTo(quicLike, relayUDP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	n, from, err := relay.ReadFrom(b)
	if err != nil || string(b[:n]) != string(quicLike) {
		t.Fatalf("relay read %q, %v; want the plain datagram", b[:n], err)
	}
	if _, err := relay.WriteTo([]byte("\x41answer"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err = plain.ReadFrom(b); err != nil || string(b[:n]) != "\x41answer" {
		t.Fatalf("plain peer read %q, %v; want the answer as it was sent", b[:n], err)
	}

	// The FEC peer gets plain answers until its address is trusted (QUIC
	// validated it), then FEC frames, which it unwraps.
	if _, err := edge.WriteTo(quicLike, relayUDP.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if n, from, err = relay.ReadFrom(b); err != nil || string(b[:n]) != string(quicLike) {
		t.Fatalf("relay read %q, %v; want the datagram inside the frame", b[:n], err)
	}
	if _, err := relay.WriteTo([]byte("\x41before"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err = edge.ReadFrom(b); err != nil || string(b[:n]) != "\x41before" {
		t.Fatalf("edge read %q, %v", b[:n], err)
	}
	if s := relay.Stats(); s.DataSent != 0 {
		t.Errorf("relay sent %d FEC data frames to an address not trusted yet", s.DataSent)
	}
	defer relay.Trust(from)()
	if _, err := relay.WriteTo([]byte("\x41fec answer"), from); err != nil {
		t.Fatal(err)
	}
	if n, _, err = edge.ReadFrom(b); err != nil || string(b[:n]) != "\x41fec answer" {
		t.Fatalf("edge read %q, %v", b[:n], err)
	}
	if s := relay.Stats(); s.DataSent != 1 {
		t.Errorf("relay sent %d FEC data frames, want 1 (to the FEC peer only)", s.DataSent)
	}

	// A frame forged with the plain peer's address (here sent from its
	// socket) makes the relay take it for an FEC peer only until the
	// peer's next plain packet.
	forged := make([]byte, headerLen+lenLen+len(quicLike))
	putHeader(forged, kindData, 1, 0, 10, 2)
	binary.BigEndian.PutUint16(forged[headerLen:], uint16(len(quicLike)))
	copy(forged[headerLen+lenLen:], quicLike)
	for _, d := range [][]byte{forged, quicLike} {
		if _, err := plain.WriteTo(d, relayUDP.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if _, from, err = relay.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		if fec := relay.SpeaksFEC(from); fec != (d[0] == kindData) {
			t.Errorf("after a %x packet: SpeaksFEC = %v", d[0], fec)
		}
	}
}

// TestForgedFloodStaysBounded: frames forged from many addresses (full
// size parity frames of ever new groups, inconsistent shapes, garbage) fill
// neither the peer table nor the shard budget past their bounds, and a
// genuine data frame still passes.
func TestForgedFloodStaysBounded(t *testing.T) {
	p, b, pb := maxPeers, maxBuffered, maxPeerBuffered
	t.Cleanup(func() { maxPeers, maxBuffered, maxPeerBuffered = p, b, pb }) // after the link's cleanup
	maxPeers, maxBuffered, maxPeerBuffered = 8, 40*bufSize, 24*bufSize
	l := newLink(t, DefaultShape, FlushDelay, func(int, header) bool { return false })
	const senders, frames = 16, 200
	var peak atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := udp(t)
			defer c.Close()
			f := make([]byte, bufSize)
			for i := range frames {
				// Parity frames of groups 0, 1, 2, ... with shapes that
				// change every frame, and now and then a bad length.
				n := 1 + (i+s)%MaxData
				putHeader(f, kindParity, uint32(i/3), n+i%2, n, 2)
				if i%7 == 0 {
					putHeader(f, kindData, uint32(i/3), i%MaxData, 10, 2) // length prefix wrong
				}
				if _, err := c.WriteTo(f, l.to); err != nil {
					t.Error(err)
					return
				}
				peak.Store(max(peak.Load(), l.rx.buffered.Load()))
			}
		}()
	}
	wg.Wait()
	// A genuine datagram after the flood: when it is read, so is the flood
	// (one socket, read in order). It is sent again until it arrives: the
	// flood may still fill the socket's buffer.
	resend := time.NewTicker(50 * time.Millisecond)
	defer resend.Stop()
	for arrived := false; !arrived; {
		if _, err := l.tx.WriteTo(datagram(1), l.to); err != nil {
			t.Fatal(err)
		}
		for waiting := true; waiting && !arrived; {
			select {
			case b := <-l.got: // forged groups may be "rebuilt" into garbage, which QUIC drops
				arrived = string(b) == string(datagram(1))
			case <-resend.C:
				waiting = false
			}
		}
	}
	// Stop the reader (it holds the receive state) and look.
	if err := l.rx.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	<-l.done
	peers := len(l.rx.peers)
	var perPeer int
	for _, p := range l.rx.peers {
		if p.rx != nil {
			perPeer = max(perPeer, p.rx.bytes)
		}
	}
	if peers > maxPeers {
		t.Errorf("%d peers, bound %d", peers, maxPeers)
	}
	if b := l.rx.buffered.Load(); b > maxBuffered || peak.Load() > maxBuffered {
		t.Errorf("buffered %d, peak %d, bound %d", b, peak.Load(), maxBuffered)
	}
	if perPeer > maxPeerBuffered {
		t.Errorf("one peer holds %d bytes, bound %d", perPeer, maxPeerBuffered)
	}
	if s := l.rx.Stats(); s.Dropped == 0 {
		t.Errorf("no frame dropped: %+v", s)
	}
}

// TestConnCloses: Close ends a blocked reader and later writes fail.
func TestConnCloses(t *testing.T) {
	c, err := NewConn(udp(t), Always, DefaultShape)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, _, err := c.ReadFrom(make([]byte, 2048)); done <- err }()
	if _, err := c.WriteTo([]byte("\x41x"), c.LocalAddr()); err != nil { // opens a group and its timer
		t.Fatal(err)
	}
	<-done // its own datagram
	go func() { _, _, err := c.ReadFrom(make([]byte, 2048)); done <- err }()
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if _, err := c.WriteTo([]byte("\x41x"), c.LocalAddr()); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []Shape{{}, DefaultShape, {1, 1}, {MaxData, MaxParity}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%v: %v", s, err)
		}
	}
	for _, s := range []Shape{{0, 2}, {10, 0}, {MaxData + 1, 1}, {1, MaxParity + 1}, {-1, 1}} {
		if err := s.Validate(); err == nil {
			t.Errorf("%v: valid", s)
		}
	}
}

// BenchmarkSend and BenchmarkReceive: the wrapper's cost per datagram of
// 1200 bytes (the socket's excluded: a discarding PacketConn).
func BenchmarkSend(b *testing.B) {
	c, err := NewConn(discard{}, Always, DefaultShape)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := make([]byte, 1200)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.WriteTo(p, to); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReceive(b *testing.B) {
	// Frames of a DefaultShape sender with one data frame per group lost: each
	// group is rebuilt.
	var frames [][]byte
	rec := &recorder{}
	tx, err := NewConn(rec, Always, DefaultShape)
	if err != nil {
		b.Fatal(err)
	}
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	for i := range 4000 {
		if _, err := tx.WriteTo(make([]byte, 1200), to); err != nil {
			b.Fatal(err)
		}
		_ = i
	}
	tx.Close()
	for _, f := range rec.frames {
		if h, _ := parseHeader(f); h.kind == kindData && h.index == 3 {
			continue
		}
		frames = append(frames, f)
	}
	src := &replay{frames: frames, from: to}
	rx, err := NewConn(src, Answer, Shape{})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 2048)
	b.SetBytes(1200)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := rx.ReadFrom(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// discard is a PacketConn that drops what is written and never reads.
type discard struct{ net.PacketConn }

func (discard) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (discard) Close() error                              { return nil }

// recorder keeps what is written.
type recorder struct {
	discard
	frames [][]byte
}

func (r *recorder) WriteTo(b []byte, _ net.Addr) (int, error) {
	r.frames = append(r.frames, append([]byte(nil), b...))
	return len(b), nil
}

// replay reads its frames in a loop, each group under a fresh id so that
// every pass rebuilds again.
type replay struct {
	discard
	frames [][]byte
	from   net.Addr
	i      int
	pass   uint32
}

func (r *replay) ReadFrom(b []byte) (int, net.Addr, error) {
	if r.i == len(r.frames) {
		r.i = 0
		r.pass++
	}
	f := r.frames[r.i]
	r.i++
	n := copy(b, f)
	binary.BigEndian.PutUint32(b[1:5], binary.BigEndian.Uint32(f[1:5])+r.pass*1000)
	return n, r.from, nil
}

// FuzzReceive: whatever frames arrive, from whichever of a few addresses, a
// Conn of either mode neither panics nor rebuilds a datagram longer than a
// frame can carry, and can still answer each address (a forged shape or
// a lone parity frame must not break its sender).
func FuzzReceive(f *testing.F) {
	frame := func(kind byte, group uint32, index, a, b int, payload int) []byte {
		fr := make([]byte, headerLen+lenLen+payload)
		putHeader(fr, kind, group, index, a, b)
		if kind == kindData {
			binary.BigEndian.PutUint16(fr[headerLen:], uint16(payload))
		}
		return fr
	}
	seed := func(frames ...[]byte) []byte { // each frame: address byte, length (2), frame
		var in []byte
		for i, fr := range frames {
			in = append(in, byte(i%3), byte(len(fr)>>8), byte(len(fr)))
			in = append(in, fr...)
		}
		return in
	}
	f.Add(seed(frame(kindParity, 7, 2, 2, 1, 20)))
	f.Add(seed(frame(kindData, 1, 0, 1, 16, 30), frame(kindParity, 1, 1, 1, 16, 32)))
	f.Add(seed(frame(kindData, 5, 3, 20, 4, 100), frame(kindData, 5, 0, 2, 2, 10), frame(kindParity, 5, 20, 20, 4, 102)))
	f.Add(seed(frame(kindData, 9, 0, 32, 16, 1400), frame(kindParity, 9, 33, 1, 16, 1402)))
	// From one address (the fourth frame comes from the first's): a data
	// index that names a kept parity shard.
	f.Add(seed(frame(kindParity, 3, 7, 5, 3, 20), nil, nil, frame(kindData, 3, 7, 20, 4, 10)))
	f.Fuzz(func(t *testing.T, in []byte) {
		addrs := []*net.UDPAddr{{IP: net.IPv4(10, 0, 0, 1), Port: 1}, {IP: net.IPv4(10, 0, 0, 2), Port: 2}, {IP: net.IPv4(10, 0, 0, 3), Port: 3}}
		for _, mode := range []Mode{Answer, Always} {
			c, err := NewConn(discard{}, mode, DefaultShape)
			if err != nil {
				t.Fatal(err)
			}
			rest := in
			for len(rest) >= 3 {
				a, n := addrs[int(rest[0])%len(addrs)], int(rest[1])<<8|int(rest[2])
				rest = rest[3:]
				n = min(n, len(rest))
				fr := append([]byte(nil), rest[:n]...)
				rest = rest[n:]
				c.rmu.Lock()
				data := c.receive(fr, a)
				pending := c.pending
				c.pending = nil
				c.rmu.Unlock()
				if len(data) > MaxPayload {
					t.Fatalf("passed up %d bytes", len(data))
				}
				for _, r := range pending {
					if len(r.data) > MaxPayload {
						t.Fatalf("rebuilt %d bytes", len(r.data))
					}
				}
				checkBudget(t, c)
			}
			for _, a := range addrs {
				for range 3 {
					if _, err := c.WriteTo([]byte("\x41answer"), a); err != nil {
						t.Fatal(err)
					}
				}
				flushNow(c, a)
			}
			c.Close()
		}
	})
}

// TestDataOverParityKeepsBudget: a data frame whose index is that of a
// parity frame already kept for its group (only a forger sends both) does
// not take the parity shard's place uncounted. It used to: the kept
// parity buffer was overwritten, its bytes stayed counted against the
// Conn's budget forever, and ~22 000 such pairs from any address left the
// relay no budget to rebuild anything for anyone.
func TestDataOverParityKeepsBudget(t *testing.T) {
	c, err := NewConn(discard{}, Answer, Shape{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	from := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}
	parity := make([]byte, headerLen+lenLen+20)
	data := make([]byte, headerLen+lenLen+10)
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for g := range uint32(3) {
		putHeader(parity, kindParity, g, 7, 5, 3) // parity 2 of a group of 5+3
		c.receive(parity, from)
		putHeader(data, kindData, g, 7, 20, 4) // data index 7 of a 20+4 sender
		binary.BigEndian.PutUint16(data[headerLen:], 10)
		c.receive(data, from)
	}
	// Every group is done (a data index beyond its n), so nothing is kept.
	if b := c.buffered.Load(); b != 0 {
		t.Errorf("buffered %d bytes after the groups let go of their shards, want 0", b)
	}
	if p := c.lookup(from); p != nil && p.rx.bytes != 0 {
		t.Errorf("peer holds %d bytes, want 0", p.rx.bytes)
	}
}

// checkBudget fails unless c's byte counts are those of the shards its
// peers keep.
func checkBudget(t *testing.T, c *Conn) {
	t.Helper()
	var total, untrusted int64
	for _, p := range c.peers {
		if p.rx == nil {
			continue
		}
		kept := 0
		for i := range p.rx.groups {
			g := &p.rx.groups[i]
			for j, b := range g.shards {
				if b != nil {
					kept += bufSize
				}
				if b != nil && g.untrusted&(1<<j) != 0 {
					untrusted += bufSize
				}
			}
		}
		if kept != p.rx.bytes {
			t.Fatalf("peer %v keeps %d bytes of shards, counts %d", p.addr, kept, p.rx.bytes)
		}
		total += int64(kept)
	}
	if b := c.buffered.Load(); b != total {
		t.Fatalf("peers keep %d bytes of shards, the Conn counts %d", total, b)
	}
	if untrusted != c.untrusted || untrusted > maxUntrustedBuffered {
		t.Fatalf("untrusted peers keep %d bytes of shards, the Conn counts %d, bound %d", untrusted, c.untrusted, maxUntrustedBuffered)
	}
}

// TestFloodLeavesOthersTheirRecovery: peers not trusted, from many ports
// of one host or from many hosts, keep shards only within their budgets,
// per host and in all: a peer on another host, and a trusted peer, still
// rebuild their losses. They used to share one budget with every peer, and
// a few dozen addresses (ports of one host do) filled it for a minute at a
// time, ending recovery for every edge.
func TestFloodLeavesOthersTheirRecovery(t *testing.T) {
	b, pb, ub, hb := maxBuffered, maxPeerBuffered, maxUntrustedBuffered, maxHostBuffered
	t.Cleanup(func() { maxBuffered, maxPeerBuffered, maxUntrustedBuffered, maxHostBuffered = b, pb, ub, hb })
	maxBuffered, maxPeerBuffered, maxUntrustedBuffered, maxHostBuffered = 200*bufSize, 48*bufSize, 100*bufSize, 24*bufSize
	for _, tt := range []struct {
		name  string
		hosts int // the flood comes from 8 sockets on this many hosts
		trust bool
	}{{"ports of one host", 1, false}, {"many hosts, trusted peer", 8, true}} {
		t.Run(tt.name, func(t *testing.T) {
			shape := Shape{Data: 4, Parity: 2}
			l := newLink(t, shape, time.Hour, func(_ int, h header) bool { return h.kind == kindData && h.index == 1 })
			for i := range 8 {
				flood(t, l, net.IPv4(127, 0, 0, byte(2+i%tt.hosts)))
			}
			if tt.trust {
				defer l.rx.Trust(l.tx.LocalAddr())()
			}
			// One round: 4 groups of 4, each losing one data frame. Then a
			// plain datagram: once it is in, so are the rebuilt ones.
			const count = 4 * 4
			for i := range count {
				if _, err := l.tx.WriteTo(datagram(i), l.to); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := l.tx.pc.(*lossy).PacketConn.WriteTo(datagram(count), l.to); err != nil {
				t.Fatal(err)
			}
			got := 0
			for b := range l.got {
				if string(b) == string(datagram(count)) {
					break
				}
				got++
			}
			if got != count {
				t.Errorf("%d of %d datagrams arrived (%d rebuilt); receiver: %+v", got, count, l.rx.Stats().Recovered, l.rx.Stats())
			}
		})
	}
}

// flood sends l's receiver, from a socket on host ip, parity frames of 16
// groups of 32+16, which it keeps (they never make a group whole), each
// group followed by a plain datagram that the test waits for.
func flood(t *testing.T, l *link, ip net.IP) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := make([]byte, 200)
	mark := []byte("\x41mark")
	for g := range uint32(window) {
		for j := range MaxParity {
			putHeader(f, kindParity, g, MaxData+j, MaxData, MaxParity)
			if _, err := c.WriteTo(f, l.to); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.WriteTo(mark, l.to); err != nil {
			t.Fatal(err)
		}
		for b := range l.got {
			if string(b) == string(mark) {
				break
			}
		}
	}
}
