package wstun

// Control frames that can wait a little, on a short path.
//
// Every exchange makes two frames that carry nothing anyone waits for: the
// accepting end's ACK (yamux sends it as it accepts the stream, before the
// answer exists) and the opening end's FIN after the answer (a window
// update with only the FIN flag). Written as they come, each is a message,
// a TLS record and a write on one end and a read on the other: 4.25
// tunnel writes per unary request, one at a time on one host, where 3.12
// do with the hold (strace; the lab report's late-night section).
//
// The relay's Dispatched frame is a third: it tells the edge that a
// request may have reached the provider, which only matters if the stream
// breaks, and the answer follows it within a millisecond or so on a short
// path. Sent alone it cost another message, a write at the relay and a
// read and a wake-up at the edge (with the hold, the relay's tunnel writes
// at the lab's loopback max rate went from 2.57 to 2.25 per request; perf
// stat, scripts/lab 2026-12-08). Its stream writes it with WriteLazy, and
// the frame comes here marked lazy (lazyMark).
//
// So on a short path the writer holds a batch of nothing but such frames
// for at most lazyHold, and sends it with the next frame that comes (the
// stream's first answer bytes, the next stream's request). A long path
// needs no hold: small writes are paced there already (coalesce.go).

import (
	"encoding/binary"
	"time"
)

// lazyHold bounds how long a lazy frame waits for company: short next to
// anything a peer could be waiting on (an ACK's window delta only matters to
// a request body over yamux's initial 256 KiB window), long next to the gaps
// between a busy session's exchanges.
const lazyHold = time.Millisecond

// lazyMark marks a queued frame its stream wrote lazily (WriteLazyFrame). It
// is a bit of the frame's first byte, yamux's version, which is 0 on the
// wire: the writer clears it as it copies the frame into a message.
const lazyMark = 0x80

// lazyFrame reports a frame no peer waits for: one written lazily, or a
// window update that acknowledges a stream or ends it (not a SYN, not a
// reset, and not a pure window update, which may free a blocked sender).
func lazyFrame(f []byte) bool {
	if f[0]&lazyMark != 0 {
		return true
	}
	if f[1] != yamuxTypeWindowUpdate {
		return false
	}
	flags := binary.BigEndian.Uint16(f[2:])
	return flags&(yamuxFlagACK|yamuxFlagFIN) != 0 && flags&(yamuxFlagSYN|yamuxFlagRST) == 0
}

// allLazy reports a batch of only lazy frames.
func allLazy(batch [][]byte) bool {
	for _, f := range batch {
		if !lazyFrame(f) {
			return false
		}
	}
	return true
}
