package proto

import (
	"encoding/binary"
	"math"
	"time"
)

// The control stream. The edge opens one per session, before any request
// stream, and starts it with a Ping; the relay tells it apart from request
// streams by that first frame. On it:
//
//	edge → relay   Ping*      a probe: the relay answers each with a Pong
//	relay → edge   Pong*      the Ping's sequence number, echoed
//	relay → edge   GoAway*    the relay is draining: open no new streams
//	                          on this session (with Accepting: prefer
//	                          another session, use this one only while
//	                          none is up); those already open finish.
//	                          A GoAway with Accepting may be followed by
//	                          one without, once the relay refuses streams.
//
// Probes measure the session's round trip through the relay process itself
// (not only its kernel or QUIC stack), and GoAway lets the edge move new
// requests away and dial a replacement before the old session closes.

// Control frame types, after the stream frames.
const (
	FramePing   FrameType = 0x06 // edge → relay: uvarint sequence number
	FramePong   FrameType = 0x07 // relay → edge: the Ping's sequence number
	FrameGoAway FrameType = 0x08 // relay → edge: GoAway
)

// GoAway announces that the relay is draining the session.
type GoAway struct {
	// Drain is how long the relay lets streams already open finish.
	Drain time.Duration
	// Message says why, for logs.
	Message string
	// Accepting says that the relay still takes new streams on the session
	// for now: the edge should prefer any other session, but use this one
	// rather than none (the only relay restarting). Without it the relay
	// refuses new streams with CodeGoingAway. Encoded as a trailing flag
	// byte, which relays and edges from before it treat as a plain GoAway.
	Accepting bool
	// Renewal says that the relay is not going anywhere: it only wants the
	// session replaced (relay/renew.go). An edge that keeps more sessions
	// than its base number for the load may let such a session end without
	// dialing another, and leave the count to its load. A flag in the same
	// byte: edges from before it read a plain GoAway (their parser refuses
	// the unknown bit, and drains the session anyway).
	Renewal bool
}

// The trailing flag byte of a GoAway: bits, so that a peer that knows only
// some of them reads those; unknown bits are ignored.
const (
	goAwayAccepting = 1 << iota
	goAwayRenewal
)

// Append appends the encoded GoAway (the payload of a FrameGoAway).
func (g *GoAway) Append(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(max(g.Drain, 0)/time.Millisecond))
	b = appendString(b, g.Message)
	var flags byte
	if g.Accepting {
		flags |= goAwayAccepting
	}
	if g.Renewal {
		flags |= goAwayRenewal
	}
	if flags != 0 {
		b = append(b, flags)
	}
	return b
}

// ParseGoAway decodes a FrameGoAway payload.
func ParseGoAway(p []byte) (*GoAway, error) {
	d := decoder{p: p}
	ms := d.uvarint()
	if ms > math.MaxInt64/uint64(time.Millisecond) {
		d.fail("drain")
	}
	g := &GoAway{Drain: time.Duration(ms) * time.Millisecond}
	g.Message = d.string()
	if d.err == nil && len(d.p) > 0 {
		flags := d.byte()
		g.Accepting, g.Renewal = flags&goAwayAccepting != 0, flags&goAwayRenewal != 0
	}
	return g, d.finish()
}

// AppendSeq appends a Pong payload.
func AppendSeq(b []byte, seq uint64) []byte { return binary.AppendUvarint(b, seq) }

// PingPadding is how many zero bytes follow a Ping's sequence number. A
// QUIC endpoint answers a packet for a connection it does not know with a
// stateless reset only if the packet is longer than 42 bytes (a reset must
// be shorter than what triggered it), and a bare probe would not be: padded
// probes are what let a relay restarted after a crash end the edge's old
// sessions at once.
const PingPadding = 48

// ParseSeq decodes a Ping or Pong payload: the sequence number; a Ping's
// padding is skipped.
func ParseSeq(p []byte) (uint64, error) {
	d := decoder{p: p}
	seq := d.uvarint()
	return seq, d.err
}

// WritePing writes a FramePing.
func (w *Writer) WritePing(seq uint64) error {
	return w.writeEncoded(FramePing, func(b []byte) []byte {
		return append(AppendSeq(b, seq), make([]byte, PingPadding)...)
	})
}

// WritePong writes a FramePong.
func (w *Writer) WritePong(seq uint64) error {
	return w.writeEncoded(FramePong, func(b []byte) []byte { return AppendSeq(b, seq) })
}

// WriteGoAway writes a FrameGoAway.
func (w *Writer) WriteGoAway(g GoAway) error {
	return w.writeEncoded(FrameGoAway, g.Append)
}
