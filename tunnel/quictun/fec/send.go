package fec

import (
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/klauspost/reedsolomon"
)

// header is a parsed frame header; a and b are K and M in a data frame,
// n and m in a parity frame.
type header struct {
	kind  byte
	group uint32
	index int
	a, b  int
}

func putHeader(f []byte, kind byte, group uint32, index, a, b int) {
	f[0] = kind
	binary.BigEndian.PutUint32(f[1:5], group)
	f[5], f[6], f[7] = byte(index), byte(a), byte(b)
}

// parseHeader checks what can be checked of a frame on its own.
func parseHeader(f []byte) (header, bool) {
	if len(f) < headerLen+lenLen+1 || len(f) > bufSize {
		return header{}, false
	}
	h := header{kind: f[0], group: binary.BigEndian.Uint32(f[1:5]), index: int(f[5]), a: int(f[6]), b: int(f[7])}
	if h.a < 1 || h.a > MaxData || h.b < 1 || h.b > MaxParity {
		return header{}, false
	}
	if h.kind == kindData {
		// The length prefix must match: a data frame carries its shard unpadded.
		return h, h.index < MaxData && int(binary.BigEndian.Uint16(f[headerLen:])) == len(f)-headerLen-lenLen
	}
	return h, h.index >= h.a && h.index < h.a+h.b
}

// bufs pools frame buffers of bufSize bytes.
var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

func getBuf() *[]byte  { return bufs.Get().(*[]byte) }
func putBuf(b *[]byte) { bufs.Put(b) }

// encoders caches one Reed-Solomon codec per group shape (n ≤ MaxData,
// m ≤ MaxParity: at most 512). The inversion cache is off: it keeps one
// matrix per loss pattern seen, which input chosen by a peer could grow
// without bound; inverting a 32×32 matrix per rebuilt group costs little.
var encoders struct {
	sync.Mutex
	m map[[2]int]reedsolomon.Encoder
}

func encoder(n, m int) reedsolomon.Encoder {
	encoders.Lock()
	defer encoders.Unlock()
	k := [2]int{n, m}
	if e, ok := encoders.m[k]; ok {
		return e
	}
	e, err := reedsolomon.New(n, m, reedsolomon.WithInversionCache(false))
	if err != nil {
		panic(err) // n and m are within the checked bounds
	}
	if encoders.m == nil {
		encoders.m = make(map[[2]int]reedsolomon.Encoder)
	}
	encoders.m[k] = e
	return e
}

// sender is the send side towards one peer, under peer.smu.
//
// Interleaving: datagram i of a round goes to open group i mod width, and a
// round's groups close together, their parity frames interleaved too (P0a
// P1a P2a P3a P0b ...). Any width consecutive frames then hold at most one
// frame of each group: at width 4 a burst of up to 4 losses costs each
// group one frame, up to 8 two.
//
// The width adapts to the rate: a round that the timer closes before its
// groups filled had too few datagrams for width groups (each with at least
// one parity frame, the overhead would approach 100 %), so the next round
// uses as many groups as that round would have filled; a round that fills
// doubles the width again, up to interleave.
type sender struct {
	c      *Conn
	addr   net.Addr
	shape  Shape
	next   uint32 // the next group's id
	seq    uint   // datagrams of this round, which picks the group
	width  uint   // groups in this round, 1..interleave
	open   [interleave]*txGroup
	timer  *time.Timer
	armed  bool
	due    time.Time // when the armed timer should close the round
	closed bool
}

type txGroup struct {
	id     uint32
	n      int
	maxLen int // longest datagram
	frames [MaxData]*[]byte
	lens   [MaxData]int
}

// send writes b to addr in a data frame and, when that fills the round,
// the round's parity frames.
func (c *Conn) send(p *peer, shape Shape, b []byte, addr net.Addr) (int, error) {
	p.smu.Lock()
	defer p.smu.Unlock()
	if p.tx == nil {
		tx := &sender{c: c, addr: addr, next: randUint32(), shape: shape, width: interleave}
		tx.timer = time.AfterFunc(time.Hour, func() { p.smu.Lock(); defer p.smu.Unlock(); tx.flush() })
		tx.timer.Stop()
		p.tx = tx
	}
	tx := p.tx
	if tx.closed { // the peer expired while we held it: send plain
		return c.pc.WriteTo(b, addr)
	}
	if tx.shape != shape { // an answering Conn mirrors a peer whose shape changed
		tx.closeRound(false)
		tx.shape = shape
	}
	slot := tx.seq % tx.width
	tx.seq++
	g := tx.open[slot]
	if g == nil {
		g = &txGroup{id: tx.next}
		tx.next++
		tx.open[slot] = g
		if !tx.armed { // the round's first datagram: it closes FlushDelay from now at the latest
			tx.armed, tx.due = true, time.Now().Add(c.flushDelay)
			tx.timer.Reset(c.flushDelay)
		}
	}
	fb := getBuf()
	f := (*fb)[:headerLen+lenLen+len(b)]
	putHeader(f, kindData, g.id, g.n, shape.Data, shape.Parity)
	binary.BigEndian.PutUint16(f[headerLen:], uint16(len(b)))
	copy(f[headerLen+lenLen:], b)
	g.frames[g.n], g.lens[g.n] = fb, len(b)
	g.n++
	g.maxLen = max(g.maxLen, len(b))
	_, err := c.pc.WriteTo(f, addr)
	c.stats.dataSent.Add(1)
	if slot == tx.width-1 && g.n == shape.Data { // every group of the round is full
		tx.closeRound(true)
	}
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// closeRound sends the parity of the open groups, interleaved, releases
// them and starts a new round, whose width depends on whether this one
// filled.
func (tx *sender) closeRound(filled bool) {
	if tx.armed {
		tx.armed = false
		tx.timer.Stop()
	}
	var parity [interleave][]*[]byte
	var sizes [interleave]int
	for slot, g := range tx.open {
		if g != nil {
			parity[slot], sizes[slot] = tx.encode(g)
		}
	}
	for j := range MaxParity {
		sent := false
		for slot, g := range tx.open {
			if g == nil || j >= len(parity[slot]) {
				continue
			}
			f := (*parity[slot][j])[:headerLen+sizes[slot]]
			putHeader(f, kindParity, g.id, g.n+j, g.n, len(parity[slot]))
			_, _ = tx.c.pc.WriteTo(f, tx.addr) // a lost parity frame is a lost parity frame
			tx.c.stats.paritySent.Add(1)
			sent = true
		}
		if !sent {
			break
		}
	}
	for slot, g := range tx.open {
		if g == nil {
			continue
		}
		for _, pb := range parity[slot] {
			putBuf(pb)
		}
		for i := range g.n {
			putBuf(g.frames[i])
		}
		tx.open[slot] = nil
	}
	if filled {
		tx.width = min(2*tx.width, interleave)
	} else {
		k := uint(tx.shape.Data)
		tx.width = min(max((tx.seq+k-1)/k, 1), interleave)
	}
	tx.seq = 0
}

// encode computes a group's parity shards (in frame buffers, after the
// header) and returns them with the shard size.
//
// A group gets shape.Parity shards, or as many as it has data shards if
// that is fewer. A group closed early by the flush timer is small, and it
// used to get proportionally fewer parity frames (one for up to half a
// group): two losses among a handful of frames sank it, and in the lab's
// 10 MB answer at 1 % loss most groups were closed early. Each datagram FEC
// cannot rebuild costs quic-go a window cut that it regains at one packet
// per round trip. Now a group of n survives min(n, Parity) losses: as many
// as a full group, or all of its data. The cap at n keeps parity from ever
// outweighing the data, so answering a peer in FEC at most doubles what a
// relay sends it; and a relay answers in FEC only addresses QUIC has
// validated (Conn.Trust), so a spoofed source gains nothing by it.
func (tx *sender) encode(g *txGroup) ([]*[]byte, int) {
	n, m := g.n, min(tx.shape.Parity, g.n)
	size := lenLen + g.maxLen
	shards := make([][]byte, n+m)
	for i := range n {
		f := *g.frames[i]
		clear(f[headerLen+lenLen+g.lens[i] : headerLen+size]) // the padding
		shards[i] = f[headerLen : headerLen+size]
	}
	parity := make([]*[]byte, m)
	for j := range m {
		parity[j] = getBuf()
		shards[n+j] = (*parity[j])[headerLen : headerLen+size]
	}
	if err := encoder(n, m).Encode(shards); err != nil {
		panic(err) // shapes and sizes are ours and consistent
	}
	return parity, size
}

// flush closes the round when its timer fires: traffic paused, or runs too
// slowly to fill the groups within FlushDelay.
// A callback that lost the race with a Stop finds the timer disarmed or
// rearmed for later, and leaves the round alone.
func (tx *sender) flush() {
	if tx.closed || !tx.armed {
		return
	}
	if wait := time.Until(tx.due); wait > 0 {
		tx.timer.Reset(wait)
		return
	}
	tx.closeRound(false)
}

// stop ends the sender: the timer is stopped and open groups are released
// without parity.
func (tx *sender) stop() {
	tx.closed = true
	tx.timer.Stop()
	for slot, g := range tx.open {
		if g != nil {
			for i := range g.n {
				putBuf(g.frames[i])
			}
			tx.open[slot] = nil
		}
	}
}
