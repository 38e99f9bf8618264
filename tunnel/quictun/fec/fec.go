// Package fec adds forward error correction under QUIC: a net.PacketConn
// wrapper that sends every datagram at once inside a small frame and, after
// each group of them, parity frames (systematic Reed-Solomon) from which the
// receiver rebuilds up to that many lost datagrams of the group.
//
// Why: quic-go's congestion control is loss-based (Cubic/NewReno). Across a
// border with random loss (1 % at 150 ms RTT) one loss-based window stays
// at ~0.1 MB/s whatever the bandwidth. Rebuilding a lost packet a few
// milliseconds after its group ends hides the loss from quic-go: the
// recovered packet is acknowledged within its reordering allowance (RACK's
// 9/8 RTT; quic-go disables its packet threshold after the first spurious
// loss and undoes that loss's window cut), so the window grows as on a clean
// link. UDPspeeder, kcptun and tinyfecVPN do the same on such links.
//
// Wire format. A QUIC packet always has the fixed bit (0x40) of its first
// byte set: quic-go sets it on every packet and does not implement the
// grease_quic_bit extension (RFC 9287) that could clear it; should a later
// quic-go offer it, it must stay off on sessions through a Conn. An FEC
// frame starts with a byte whose 0x40 bit is clear, so one socket carries
// both:
//
//	data:   0x2c | group (4, big-endian) | index | K | M | length (2) | datagram
//	parity: 0x2d | group (4, big-endian) | index | n | m | parity shard
//
// A group's data shard i is length|datagram, zero-padded to the longest in
// the group; a data frame carries it unpadded. K and M in a data frame are
// the sender's shape (the answering side mirrors it); n and m in a parity
// frame are this group's: n data shards (fewer than K when the flush timer
// closed the group early) and m parity shards (indexes n..n+m-1). Both
// frames of a group are at most header+2+longest datagram bytes, so a path
// MTU probe is lost or kept with its group's parity alike.
//
// The frames are not authenticated: QUIC's AEAD is inside them. A forged
// frame can at worst make the receiver pass garbage up, which quic-go
// drops; memory (a byte budget per Conn, a bounded window of groups per
// peer, a bounded peer table with expiry) and CPU (each stored shard takes
// part in at most one reconstruction) stay bounded whatever arrives. Peers
// whose address QUIC has not validated (see Conn.Trust) get no FEC frames,
// so FEC cannot amplify what a spoofed source makes the relay send, and
// share a smaller budget, per host and in all, so they cannot take the
// trusted peers' memory for rebuilding.
package fec

import (
	"fmt"
	"time"
)

// Shape is how many data datagrams make a group and how many parity
// datagrams protect it: up to Parity losses per group are rebuilt, at a
// wire overhead of about Parity/Data.
type Shape struct {
	Data   int `yaml:"data"`
	Parity int `yaml:"parity"`
}

// Limits of a Shape, for both what a Conn sends and what it accepts.
const (
	MaxData   = 32
	MaxParity = 16
)

// DefaultShape is the shape of tunnel.quic_fec: on, for a border with 1–3 %
// loss: 20 % more packets. A group of 24 loses more than 4 frames with
// probability ~4·10⁻⁶ at 1 % independent loss and ~6·10⁻⁴ at 3 %; 10+2,
// at the same overhead, ~2·10⁻⁴ and ~5·10⁻³. It matters: every datagram
// FEC cannot rebuild is a loss to QUIC, whose NewReno cuts its window and
// regains it at one packet per round trip. In the lab (a 10 MB answer,
// 150 ms, 1 % loss) 10+2 lost a group in 3 of 6 transfers, which then took
// 5.4–5.7 s instead of 1.6 s; 20+4 lost none in 6.
var DefaultShape = Shape{Data: 20, Parity: 4}

// Enabled reports whether the shape asks for FEC (the zero Shape is off).
func (s Shape) Enabled() bool { return s.Data != 0 || s.Parity != 0 }

// Validate checks the shape's bounds.
func (s Shape) Validate() error {
	if !s.Enabled() {
		return nil
	}
	if s.Data < 1 || s.Data > MaxData || s.Parity < 1 || s.Parity > MaxParity {
		return fmt.Errorf("fec: data must be 1..%d and parity 1..%d, not %d and %d", MaxData, MaxParity, s.Data, s.Parity)
	}
	return nil
}

func (s Shape) String() string { return fmt.Sprintf("%d+%d", s.Data, s.Parity) }

const (
	kindData   = 0x2c // 0x40 clear: never the first byte of a QUIC packet
	kindParity = 0x2d
	headerLen  = 8
	lenLen     = 2 // the length prefix of a data shard

	// bufSize is the size of every pooled frame buffer; datagrams longer
	// than MaxPayload go out plain (quic-go sends at most 1452 bytes).
	bufSize = 1536
	// MaxPayload is the longest datagram that goes into a group.
	MaxPayload = bufSize - headerLen - lenLen
	maxShard   = lenLen + MaxPayload

	// interleave is how many groups are open at once on a sender:
	// consecutive datagrams go to different groups, so a burst of up to
	// interleave losses costs each group one datagram.
	interleave = 4
	// window is how many recent groups a receiver keeps per peer: enough
	// for the open groups and some reordering.
	window = 4 * interleave

	// FlushDelay bounds how long a group stays open: at a pause (or at a
	// rate too low to fill it) its parity goes out this long after its
	// first datagram, so a lone request is protected too, and a rebuilt
	// datagram arrives well within QUIC's reordering allowance of 1/8 RTT
	// on a border path.
	FlushDelay = 5 * time.Millisecond

	// peerIdle: peers silent this long expire from the table.
	peerIdle = time.Minute
	// sweepEvery is the least time between two expiry sweeps forced by a
	// full table.
	sweepEvery = time.Second
)

// Bounds on what a Conn keeps; variables so tests can make them small.
var (
	// maxPeers bounds the peer table.
	maxPeers = 1024
	// maxBuffered bounds the bytes of shards a Conn holds for
	// reconstruction, over all peers; past it new shards pass up but are
	// not kept (no recovery until groups complete or expire).
	maxBuffered int64 = 32 << 20
	// maxPeerBuffered bounds them per peer, so one peer cannot take the
	// whole budget: twice a full window of full groups of the default
	// shape (16 groups of 24 shards).
	maxPeerBuffered = 768 * bufSize
	// maxUntrustedBuffered bounds the shards of all peers not trusted (see
	// Conn.Trust): anyone can send frames from any address, so what they
	// may hold is kept apart from what the trusted peers rebuild with.
	maxUntrustedBuffered int64 = 4 << 20
	// maxHostBuffered bounds the untrusted shards per source host (IP
	// address), so that one host cycling through ports cannot take the
	// untrusted budget from the handshakes of other hosts.
	maxHostBuffered = maxPeerBuffered
)
