package wstun

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// frame is a yamux frame: header, then length bytes of payload for data.
func frame(typ byte, flags uint16, id uint32, payload int) []byte {
	f := make([]byte, yamuxHeaderLen, yamuxHeaderLen+payload)
	f[1] = typ
	binary.BigEndian.PutUint16(f[2:], flags)
	binary.BigEndian.PutUint32(f[4:], id)
	if typ == yamuxTypeData {
		binary.BigEndian.PutUint32(f[8:], uint32(payload))
		return append(f, bytes.Repeat([]byte{yamuxTypeData}, payload)...) // bytes that look like headers
	}
	binary.BigEndian.PutUint32(f[8:], 1<<20) // a window delta or ping value: no payload
	return f
}

// TestRxCounter: the per-stream count of received data is right however the
// connection splits the frames, and an entry is dropped once the stream is
// done at both ends, not before: no entry outlives its stream.
func TestRxCounter(t *testing.T) {
	const syn = 1
	var in bytes.Buffer
	in.Write(frame(yamuxTypeData, syn, 1, 5))
	in.Write(frame(yamuxTypeWindowUpdate, 0, 1, 0))
	in.Write(frame(yamuxTypePing, 0, 0, 0))
	in.Write(frame(yamuxTypeData, syn, 3, 10))
	in.Write(frame(yamuxTypeData, yamuxFlagFIN, 1, 7))
	in.Write(frame(yamuxTypeData, 0, 3, 0))
	for _, split := range []int{1, 5, 12, 13, in.Len()} {
		t.Run(fmt.Sprint("pieces of ", split), func(t *testing.T) {
			var c rxCounter
			s1 := c.entry(1) // the adapter of a stream opened here
			for p := in.Bytes(); len(p) > 0; {
				k := min(split, len(p))
				c.feed(p[:k])
				p = p[k:]
			}
			s3 := c.entry(3) // accepted after its data came
			if s1.buffered() != 12 || s3.buffered() != 10 {
				t.Fatalf("stream 1 holds %d, stream 3 %d; want 12 and 10", s1.buffered(), s3.buffered())
			}
			s1.read.Add(12)
			if s1.buffered() != 0 {
				t.Errorf("stream 1 holds %d after its reader took all", s1.buffered())
			}
			c.end(1, true) // the peer sent FIN already
			c.end(3, true)
			if n := c.tracked(); n != 1 {
				t.Fatalf("%d entries with stream 3 still open at the peer; want 1", n)
			}
			c.feed(frame(yamuxTypeWindowUpdate, yamuxFlagRST, 3, 0))
			if n := c.tracked(); n != 0 {
				t.Errorf("%d entries after both streams ended at both ends", n)
			}
		})
	}
}

// TestPeerEndsStreamBeforeAccept: a peer may open a stream and end it
// (FIN, or RST) before this side accepts it, with no data on it: a request
// canceled right after its open. The accepted stream's Context is canceled
// at once, as for a FIN that comes later, and once this side closes the
// stream its count is dropped: a long-lived session must not keep one per
// such stream.
func TestPeerEndsStreamBeforeAccept(t *testing.T) {
	cfg := Config{HandshakeTimeout: 5 * time.Second}
	edge, s := loopbackPair(t, tunneltest.Listen(t), cfg, cfg)
	relay := s.(*session)
	ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
	defer cancel()

	for _, end := range []struct {
		name string
		do   func(tunnel.Stream) error
	}{{"close", tunnel.Stream.Close}, {"reset", tunnel.Stream.Reset}} {
		t.Run(end.name, func(t *testing.T) {
			est, err := edge.OpenStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := end.do(est); err != nil {
				t.Fatal(err)
			}
			// Accept as AcceptStream does, but attach the adapter only once
			// yamux has the FIN (its Read says EOF): the connection has
			// delivered it before the adapter existed.
			raw, err := relay.mux.AcceptStreamWithContext(ctx)
			if err != nil {
				t.Fatal(err)
			}
			raw.SetReadDeadline(time.Now().Add(negotiateTimeout))
			if n, err := raw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("raw Read = %d, %v; want the FIN (0, EOF)", n, err)
			}
			st := newStream(raw, relay)
			select {
			case <-st.Context().Done():
			default:
				t.Error("Context not canceled: the peer's FIN came before the stream was accepted")
			}
			st.Close()
			if n := relay.conn.rx.tracked(); n != 0 {
				t.Errorf("%d receive counts kept after the stream ended at both ends; want 0", n)
			}
		})
	}
}
