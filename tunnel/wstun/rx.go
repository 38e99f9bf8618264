package wstun

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// yamux keeps each stream's unread data in a private buffer and says
// nothing about its size. rxCounter finds it out from the other end: it
// reads the frame headers of everything wsConn hands yamux and counts, per
// stream, the data bytes that arrived; the stream adapter counts what its
// reader took (stream.Buffered). The edge's client buffer budget charges
// a response blocked on its client with that difference, not with a worst
// case.
//
// Bytes count as received when yamux reads them off the connection, a
// little before it files them under their stream, so the difference is
// never below what yamux really holds.
type rxCounter struct {
	// Parser state, touched only by yamux's single reader (under
	// wsConn.readMu).
	hdr  [yamuxHeaderLen]byte
	hdrN int
	left uint32    // data bytes of the current frame still to come
	cur  *rxStream // the current frame's stream

	mu      sync.Mutex
	streams map[uint32]*rxStream
}

// rxStream is one stream's count. An entry lives until both the local
// adapter has closed the stream and the peer has ended its side (FIN or
// RST), after which no data can arrive for it; a session's map dies with
// the session.
type rxStream struct {
	received atomic.Int64
	read     atomic.Int64
	// peerGone cancels the adapter's Context when the peer ends its side;
	// nil until the adapter exists (guarded by rxCounter.mu).
	peerGone context.CancelFunc
	// guarded by rxCounter.mu
	localDone, remoteDone bool
}

// buffered is what the stream received and its reader has not taken.
func (s *rxStream) buffered() int64 { return max(0, s.received.Load()-s.read.Load()) }

// feed parses p, the next bytes of the incoming yamux byte stream.
func (c *rxCounter) feed(p []byte) {
	for len(p) > 0 {
		if c.left > 0 {
			k := min(uint32(len(p)), c.left)
			c.cur.received.Add(int64(k))
			c.left -= k
			p = p[k:]
			continue
		}
		k := copy(c.hdr[c.hdrN:], p)
		c.hdrN += k
		p = p[k:]
		if c.hdrN < yamuxHeaderLen {
			return
		}
		c.hdrN = 0
		typ, flags := c.hdr[1], binary.BigEndian.Uint16(c.hdr[2:4])
		id, length := binary.BigEndian.Uint32(c.hdr[4:8]), binary.BigEndian.Uint32(c.hdr[8:12])
		if typ != yamuxTypeData && typ != yamuxTypeWindowUpdate {
			continue // pings and go-aways: no stream
		}
		// Frames may come before the adapter exists (the peer writes, or
		// ends the stream, right behind its SYN, or answers before
		// OpenStream returns): the entry is made at the stream's first
		// frame from the peer, its SYN or ACK, or at data, and found by
		// attach. A FIN or RST with no entry would be lost, and with it
		// the Context's cancel and the entry's removal.
		if typ == yamuxTypeData || flags&(yamuxFlagSYN|yamuxFlagACK) != 0 {
			s := c.entry(id)
			if typ == yamuxTypeData {
				c.cur, c.left = s, length
			}
		}
		if flags&(yamuxFlagFIN|yamuxFlagRST) != 0 {
			c.end(id, false)
		}
	}
}

// entry returns id's count, making it if need be.
func (c *rxCounter) entry(id uint32) *rxStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = make(map[uint32]*rxStream)
	}
	s := c.streams[id]
	if s == nil {
		s = new(rxStream)
		c.streams[id] = s
	}
	return s
}

// attach returns id's count for its adapter, whose Context gone cancels
// (at once if the peer has ended its side already).
func (c *rxCounter) attach(id uint32, gone context.CancelFunc) *rxStream {
	s := c.entry(id)
	c.mu.Lock()
	s.peerGone = gone
	done := s.remoteDone
	c.mu.Unlock()
	if done {
		gone()
	}
	return s
}

// end records that one side of id is done (local: the adapter closed it;
// otherwise the peer sent FIN or RST) and drops the entry once both are.
func (c *rxCounter) end(id uint32, local bool) {
	c.mu.Lock()
	s := c.streams[id]
	if s == nil {
		c.mu.Unlock()
		return
	}
	if local {
		s.localDone = true
	} else {
		s.remoteDone = true
	}
	if s.localDone && s.remoteDone {
		delete(c.streams, id)
	}
	gone := s.peerGone
	c.mu.Unlock()
	if !local && gone != nil {
		gone()
	}
}

// tracked is how many streams have an entry, for tests.
func (c *rxCounter) tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}
