package tunneltest

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/strait/strait/tunnel"
)

// RunBenchmarks measures tr on loopback with default windows and
// heartbeats:
//
//   - Open: open a stream, send a byte, receive the answer, close; ns/op is
//     the open latency including the first byte's round trip.
//   - Bulk: 64 MiB on one stream to a reader that discards; MB/s is one
//     stream's throughput (the acknowledgement of the last byte included).
//   - Concurrent256: 256 streams of 256 KiB each in parallel; MB/s is the
//     aggregate.
//   - IdleStreamMemory: 2000 idle streams opened and accepted (one byte
//     exchanged); B/idle-stream is the live-heap growth after GC divided by
//     the stream count, for both ends together (client and server share the
//     process).
func RunBenchmarks(b *testing.B, tr Transport) {
	b.Run("Open", func(b *testing.B) { benchOpen(b, tr) })
	b.Run("Bulk", func(b *testing.B) { benchSend(b, tr, 1, 64<<20) })
	b.Run("Concurrent256", func(b *testing.B) { benchSend(b, tr, 256, 256<<10) })
	b.Run("IdleStreamMemory", func(b *testing.B) { benchIdle(b, tr) })
}

func benchOpen(b *testing.B, tr Transport) {
	p := tr.Pair(b, PairOptions{})
	serve(b, p.Server)
	ctx := context.Background()
	ans := make([]byte, 1)
	for b.Loop() {
		st, err := p.Client.OpenStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.Write([]byte{marker, kindPong}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(st, ans); err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
}

// benchSend sends size bytes on each of n parallel streams per op.
func benchSend(b *testing.B, tr Transport, n, size int) {
	p := tr.Pair(b, PairOptions{})
	serve(b, p.Server)
	b.SetBytes(int64(n * size))
	chunk := make([]byte, min(size, 256<<10))
	send := func() error {
		st, err := p.Client.OpenStream(context.Background())
		if err != nil {
			return err
		}
		defer st.Close()
		if _, err := st.Write([]byte{marker, kindDiscard}); err != nil {
			return err
		}
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := st.Write(chunk); err != nil {
				return err
			}
		}
		if err := st.CloseWrite(); err != nil {
			return err
		}
		_, err = io.ReadFull(st, make([]byte, 1)) // the reader got it all
		return err
	}
	for b.Loop() {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if err := send(); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
}

func benchIdle(b *testing.B, tr Transport) {
	const count = 2000
	p := tr.Pair(b, PairOptions{})
	var perStream float64
	for b.Loop() {
		before := heapAfterGC()
		streams := make([]tunnel.Stream, 0, 2*count)
		for range count {
			a, acc, err := openIdle(p.Client, p.Server)
			if err != nil {
				b.Fatal(err)
			}
			streams = append(streams, a, acc)
		}
		after := heapAfterGC()
		perStream = float64(int64(after)-int64(before)) / count
		for _, st := range streams {
			st.Close()
		}
	}
	b.ReportMetric(perStream, "B/idle-stream")
}

// openIdle opens a stream on from and accepts it on to, exchanging one byte
// (a QUIC stream reaches the peer only with data) and setting no deadline.
func openIdle(from, to tunnel.Session) (opened, accepted tunnel.Stream, err error) {
	ctx := context.Background()
	if opened, err = from.OpenStream(ctx); err != nil {
		return nil, nil, err
	}
	if _, err = opened.Write([]byte{marker}); err != nil {
		return nil, nil, err
	}
	if accepted, err = to.AcceptStream(ctx); err != nil {
		return nil, nil, err
	}
	_, err = io.ReadFull(accepted, make([]byte, 1))
	return opened, accepted, err
}
