package wstun

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// countingListener counts every byte its connections read and write: the
// tunnel's bytes on TCP (TLS records, WebSocket frames, yamux, payload).
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.n}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// ssePair is an edge session and the relay session it landed on, with the
// relay's TCP byte counter.
type ssePair struct {
	edge, relay tunnel.Session
	tcp         atomic.Int64
}

func newSSEPair(tb testing.TB, compression string) *ssePair {
	tb.Helper()
	cfg := Config{HandshakeTimeout: 5 * time.Second, Compression: compression}
	p := &ssePair{}
	p.edge, p.relay = loopbackPair(tb, countingListener{tunneltest.Listen(tb), &p.tcp}, cfg, cfg)
	return p
}

// exchange runs one request per element of streams concurrently, as the
// edge and relay do: the edge sends the request body in a Data frame, the
// relay answers with one Data frame per SSE event and closes. It checks that
// every client receives its events byte-exact and returns the bytes the
// clients exchanged (request bodies and SSE).
func (p *ssePair) exchange(tb testing.TB, request []byte, streams [][][]byte) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), negotiateTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { // relay: answer each stream with the events it asks for
		for range streams {
			st, err := p.relay.AcceptStream(ctx)
			if err != nil {
				tb.Errorf("AcceptStream: %v", err)
				return
			}
			wg.Go(func() {
				defer st.Close()
				r := proto.NewReader(st)
				defer r.Release()
				_, req, err := r.Next()
				if err != nil {
					tb.Errorf("relay read: %v", err)
					return
				}
				i, _ := binary.Uvarint(req)
				w := proto.NewWriter(st)
				for _, ev := range streams[i] {
					if _, err := w.Write(ev); err != nil {
						tb.Errorf("relay write: %v", err)
						return
					}
				}
			})
		}
	})
	total := 0
	for i, events := range streams {
		want := bytes.Join(events, nil)
		total += len(request) + len(want)
		// The stream's index leads its request: the relay accepts streams
		// in the order they reach it, not the order they were opened.
		req := append(binary.AppendUvarint(nil, uint64(i)), request...)
		wg.Go(func() {
			st, err := p.edge.OpenStream(ctx)
			if err != nil {
				tb.Errorf("OpenStream: %v", err)
				return
			}
			defer st.Close()
			st.SetDeadline(time.Now().Add(negotiateTimeout))
			if _, err := proto.NewWriter(st).Write(req); err != nil {
				tb.Errorf("edge write: %v", err)
				return
			}
			r := proto.NewReader(st)
			defer r.Release()
			got, err := io.ReadAll(r.Body())
			if err != io.ErrUnexpectedEOF { // the relay closes without an End frame
				tb.Errorf("edge read: %v", err)
			}
			if !bytes.Equal(got, want) {
				tb.Errorf("edge received %d bytes, not the %d sent", len(got), len(want))
			}
		})
	}
	wg.Wait()
	return total
}

// TestCompressedSSEByteExact streams each family's events through a real
// session pair, compressed and not, and checks what every client receives.
func TestCompressedSSEByteExact(t *testing.T) {
	for _, fam := range families {
		streams := sseStreams(t, fam, 8, 30)
		for _, compression := range []string{CompressionDeflate, CompressionOff} {
			t.Run(fam.Name+"/"+compression, func(t *testing.T) {
				newSSEPair(t, compression).exchange(t, []byte(fam.Body), streams)
			})
		}
	}
}

// BenchmarkTunnelBytes measures, through a real session pair on loopback,
// the tunnel's TCP bytes (both directions: TLS, WebSocket, yamux, proto
// framing and window updates) per byte the clients exchange, for 64
// concurrent streams of 50 events of each family, compressed and not.
func BenchmarkTunnelBytes(b *testing.B) {
	for _, fam := range families {
		streams := sseStreams(b, fam, 64, 50)
		events := 0
		for _, s := range streams {
			events += len(s)
		}
		for _, compression := range []string{CompressionDeflate, CompressionOff} {
			b.Run(fam.Name+"/"+compression, func(b *testing.B) {
				p := newSSEPair(b, compression)
				start := p.tcp.Load() // leave out the handshakes
				client := 0
				b.ResetTimer()
				for range b.N {
					client += p.exchange(b, []byte(fam.Body), streams)
				}
				tcp := float64(p.tcp.Load() - start)
				b.ReportMetric(tcp/float64(client), "tunnel/client")
				b.ReportMetric(tcp/float64(b.N*events), "tunnel-B/event")
				b.ReportMetric(float64(client)/float64(b.N*events), "client-B/event")
			})
		}
	}
}

// BenchmarkBulkIncompressible is the cost of compression where it cannot
// help: one stream carrying random bytes, through a real session pair.
func BenchmarkBulkIncompressible(b *testing.B) {
	data := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{}).Read(data)
	for _, compression := range []string{CompressionDeflate, CompressionOff} {
		b.Run(compression, func(b *testing.B) {
			p := newSSEPair(b, compression)
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), negotiateTimeout)
				st, err := p.edge.OpenStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					st.Write(data)
					st.CloseWrite()
				}()
				rst, err := p.relay.AcceptStream(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rst); err != nil || n != int64(len(data)) {
					b.Fatalf("relay read %d bytes, %v", n, err)
				}
				rst.Close()
				st.Close()
				cancel()
			}
		})
	}
}
