package fec

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

func randUint32() uint32 { return rand.Uint32() }

// receiver is the receive side from one peer: the last window groups,
// under Conn.rmu.
type receiver struct {
	peer    *peer
	host    netip.Addr // the peer's, for maxHostBuffered
	groups  [window]rxGroup
	newest  uint32
	started bool
	bytes   int // kept shards, against maxPeerBuffered
}

type rxGroup struct {
	id   uint32
	used bool
	done bool // rebuilt, complete, or found inconsistent: keeps nothing more
	// n, m and size are the group's shape, known from its first parity
	// frame (zero before).
	n, m, size int
	have       uint64 // shards kept, by index
	untrusted  uint64 // those of them charged to the untrusted budget
	delivered  uint64 // data datagrams passed up, by index
	shards     [MaxData + MaxParity]*[]byte
	lens       [MaxData + MaxParity]int
}

// group returns the state of group id, or nil when it is too old: ids
// are compared in serial arithmetic, and one far behind the newest (a
// restarted sender) starts the window afresh.
func (r *receiver) group(c *Conn, id uint32) *rxGroup {
	d := int32(id - r.newest)
	switch {
	case !r.started || d < -(1<<16):
		r.release(c)
		r.started, r.newest = true, id
	case d > 0:
		r.newest = id
	case d <= -window:
		return nil
	}
	g := &r.groups[id%window]
	if !g.used || g.id != id {
		r.reset(c, g)
		g.used, g.id = true, id
	}
	return g
}

// reset empties a group's slot. A group that leaves with data missing lost
// more than its parity could rebuild (one whose parity frames were all lost
// has n = 0 and cannot tell, so it is not counted).
func (r *receiver) reset(c *Conn, g *rxGroup) {
	if g.used && !g.done && g.n > 0 {
		c.stats.unrecovered.Add(uint64(bits.OnesCount64((uint64(1)<<g.n - 1) &^ g.delivered)))
	}
	r.drop(c, g)
	*g = rxGroup{}
}

// drop releases a group's kept shards.
func (r *receiver) drop(c *Conn, g *rxGroup) {
	for i := range g.shards {
		if b := g.shards[i]; b != nil {
			putBuf(b)
			g.shards[i] = nil
			r.bytes -= bufSize
			c.refund(r.host, g.untrusted&(1<<i) != 0)
		}
	}
	g.have, g.untrusted = 0, 0
}

func (r *receiver) release(c *Conn) {
	for i := range r.groups {
		r.reset(c, &r.groups[i])
	}
	r.started = false
}

// keep stores a copy of a shard if the budgets allow and its index is
// free: a data index can name a kept parity shard only in forged frames,
// and the group then fails in rebuild (a data index beyond its n).
func (r *receiver) keep(c *Conn, g *rxGroup, index int, shard []byte) {
	if g.have&(1<<index) != 0 || r.bytes+bufSize > maxPeerBuffered {
		return
	}
	untrusted := !r.peer.trusted()
	if !c.charge(r.host, untrusted) {
		return
	}
	if untrusted {
		g.untrusted |= 1 << index
	}
	r.bytes += bufSize
	b := getBuf()
	g.lens[index] = copy(*b, shard)
	g.shards[index] = b
	g.have |= 1 << index
}

// charge takes a shard's bytes from the budgets, if they have room: the
// Conn's, and for an untrusted peer the untrusted one and its host's.
func (c *Conn) charge(host netip.Addr, untrusted bool) bool {
	if untrusted && (c.untrusted+bufSize > maxUntrustedBuffered || c.hosts[host]+bufSize > maxHostBuffered) {
		return false
	}
	if c.buffered.Add(bufSize) > maxBuffered {
		c.buffered.Add(-bufSize)
		return false
	}
	if untrusted {
		c.untrusted += bufSize
		c.hosts[host] += bufSize
	}
	return true
}

// refund gives back what charge took.
func (c *Conn) refund(host netip.Addr, untrusted bool) {
	c.buffered.Add(-bufSize)
	if !untrusted {
		return
	}
	c.untrusted -= bufSize
	if c.hosts[host] -= bufSize; c.hosts[host] == 0 {
		delete(c.hosts, host)
	}
}

// receive handles frame f with header h. It returns the datagram of a data
// frame (nil for a duplicate or a parity frame) and the datagrams rebuilt.
func (r *receiver) receive(c *Conn, h header, f []byte) (data []byte, rebuilt [][]byte) {
	g := r.group(c, h.group)
	shard := f[headerLen:]
	if h.kind == kindData {
		data = shard[lenLen:]
		if g == nil {
			return data, nil // too old to help a group, still a datagram
		}
		bit := uint64(1) << h.index
		if g.delivered&bit != 0 {
			c.stats.dropped.Add(1)
			return nil, nil // already passed up, maybe rebuilt
		}
		g.delivered |= bit
		if g.done {
			return data, nil
		}
		r.keep(c, g, h.index, shard)
		return data, r.rebuild(c, g)
	}
	switch {
	case g != nil && g.done:
		return nil, nil // not needed: the group is complete or rebuilt
	case g == nil || g.have&(1<<h.index) != 0:
		c.stats.dropped.Add(1)
		return nil, nil
	case g.n == 0:
		g.n, g.m, g.size = h.a, h.b, len(shard)
	case g.n != h.a || g.m != h.b || g.size != len(shard):
		c.stats.dropped.Add(1) // frames of one group disagree: forged or broken
		g.done = true
		r.drop(c, g)
		return nil, nil
	}
	r.keep(c, g, h.index, shard)
	return nil, r.rebuild(c, g)
}

// rebuild rebuilds the group's missing data datagrams once it has enough
// shards. Each group is rebuilt at most once, then marked done.
func (r *receiver) rebuild(c *Conn, g *rxGroup) [][]byte {
	if g.n == 0 {
		return nil
	}
	dataMask := uint64(1)<<g.n - 1
	all := uint64(1)<<(g.n+g.m) - 1
	if g.delivered&^dataMask != 0 || g.have&^all != 0 {
		c.stats.dropped.Add(1) // a data index beyond the group's n
		g.done = true
		r.drop(c, g)
		return nil
	}
	if g.delivered == dataMask { // nothing lost
		g.done = true
		r.drop(c, g)
		return nil
	}
	if bits.OnesCount64(g.have) < g.n {
		return nil
	}
	shards := make([][]byte, g.n+g.m)
	var spare []*[]byte
	for i := range shards {
		if b := g.shards[i]; b != nil {
			if g.lens[i] > g.size {
				c.stats.dropped.Add(1)
				g.done = true
				r.drop(c, g)
				return nil
			}
			clear((*b)[g.lens[i]:g.size])
			shards[i] = (*b)[:g.size]
		} else if i < g.n {
			sb := getBuf()
			spare = append(spare, sb)
			shards[i] = (*sb)[:0]
		}
	}
	var out [][]byte
	if encoder(g.n, g.m).ReconstructData(shards) == nil {
		for i := range g.n {
			if g.delivered&(1<<i) != 0 {
				continue
			}
			s := shards[i]
			l := int(binary.BigEndian.Uint16(s))
			if l+lenLen > len(s) {
				continue // garbage: a forged shard took part
			}
			out = append(out, append([]byte(nil), s[lenLen:lenLen+l]...))
			g.delivered |= 1 << i
		}
		c.stats.recovered.Add(uint64(len(out)))
	}
	for _, sb := range spare {
		putBuf(sb)
	}
	g.done = true
	r.drop(c, g)
	return out
}
