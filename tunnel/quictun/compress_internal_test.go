package quictun

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// writes is a test case: what the writer writes, one Write per element.
type writes struct {
	name   string
	chunks [][]byte
}

func chunkCases(tb testing.TB) []writes {
	seed := rand.NewChaCha8([32]byte{1, 2})
	rng := rand.New(seed)
	random := func(n int) []byte { b := make([]byte, n); seed.Read(b); return b }
	var events [][]byte
	for _, fam := range tunneltest.Families {
		for _, st := range tunneltest.SSEStreams(tb, fam, 2, 20) {
			events = append(events, st...)
		}
	}
	text := []byte(strings.Repeat(`{"role":"user","content":"the quick brown fox"},`, 400)) // ~19 KiB
	var mixed [][]byte
	for i := range 200 {
		switch i % 5 {
		case 0:
			mixed = append(mixed, random(1+rng.IntN(40)))
		case 1:
			mixed = append(mixed, events[i%len(events)])
		case 2:
			mixed = append(mixed, text[:rng.IntN(len(text))])
		case 3:
			mixed = append(mixed, random(rng.IntN(zMaxWrite+100)))
		default:
			mixed = append(mixed, nil)
		}
	}
	return []writes{
		{"one byte", [][]byte{{'x'}}},
		{"bytes one by one", bytes.SplitAfter([]byte("data: {\"x\":1}\n\n"), nil)},
		{"events of three families", events},
		{"text just under and over the compression limit", [][]byte{text[:zMaxWrite], text[:zMaxWrite+1], text}},
		{"text just under and over the Huffman threshold", [][]byte{text[:zEntropyMin-1], text[:zEntropyMin], text[:zEntropyMin+1]}},
		{"random 1 MiB", [][]byte{random(1 << 20)}},
		{"zeros 1 MiB", [][]byte{make([]byte, 1<<20)}},
		{"all byte values", [][]byte{func() []byte {
			b := make([]byte, 256)
			for i := range b {
				b[i] = byte(i)
			}
			return b
		}()}},
		{"mixed sizes and empty writes", mixed},
	}
}

// TestChunkedRoundTrip: on a compressing session every write arrives byte
// for byte, in order, whatever sizes are written and read, and the stream
// ends cleanly.
func TestChunkedRoundTrip(t *testing.T) {
	p := conformancePair(t, tunneltest.PairOptions{})
	if !p.Client.(*session).compressed || !p.Server.(*session).compressed {
		t.Fatal("a default pair did not negotiate compression")
	}
	for _, tc := range chunkCases(t) {
		for _, readSize := range []int{1, 7, 32 << 10} {
			t.Run(fmt.Sprintf("%s/read %d", tc.name, readSize), func(t *testing.T) {
				roundTrip(t, p.Client, p.Server, tc.chunks, readSize)
			})
		}
	}
}

// roundTrip writes chunks on a new stream from a to b, closes the write
// side, and checks that b reads exactly their concatenation, then EOF.
func roundTrip(t *testing.T, a, b tunnel.Session, chunks [][]byte, readSize int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	w, err := a.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	errc := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if n, err := w.Write(c); err != nil || n != len(c) {
				errc <- fmt.Errorf("Write(%d bytes) = %d, %v", len(c), n, err)
				return
			}
		}
		errc <- w.CloseWrite()
	}()
	r, err := b.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.SetReadDeadline(time.Now().Add(20 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, readSize)
	for {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read after %d bytes: %v", got.Len(), err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	want := bytes.Join(chunks, nil)
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, wrote %d: not the same bytes", got.Len(), len(want))
	}
}

// TestCompressedChunks: events of every family go out as zstd chunks far
// smaller than the event, incompressible or tiny writes as raw chunks.
func TestCompressedChunks(t *testing.T) {
	for _, fam := range tunneltest.Families {
		var in, out int
		for _, st := range tunneltest.SSEStreams(t, fam, 4, 30) {
			for _, ev := range st {
				in += len(ev)
				if b := encodeChunk(ev); b != nil {
					out += len(*b)
					putBuf(b)
				} else {
					out += len(ev) + 2
				}
			}
		}
		t.Logf("%s: %d event bytes, %d chunk bytes (%.2f)", fam.Name, in, out, float64(out)/float64(in))
		if out*2 > in {
			t.Errorf("%s: events compress to %d of %d bytes; want under half", fam.Name, out, in)
		}
	}
	random := make([]byte, 1000)
	for i := range random {
		random[i] = byte(i*7919 + i>>3*31)
	}
	if b := encodeChunk(random); b != nil && len(*b) >= len(random) {
		t.Errorf("a chunk that does not shrink was kept: %d bytes for %d", len(*b), len(random))
	}
}

// unaryFrames are what a unary exchange writes on its stream, each in one
// Write (proto.Writer's hold): the edge's request header, body and End, and
// the relay's response header, body and End.
func unaryFrames(tb testing.TB) [][]byte {
	var frames [][]byte
	var buf bytes.Buffer
	w := proto.NewWriter(&buf)
	w.Hold()
	if err := w.WriteRequest(&proto.RequestHeader{ID: "01JEX3K9Q2W8ZC4T7N5B6M1R0P", Family: "openai", Method: "POST",
		Path: "/v1/chat/completions", BodyLen: 96, Model: "gpt-4o-mini", Header: http.Header{
			"Content-Type": {"application/json"}, "User-Agent": {"OpenAI/Python 1.97.0"},
			"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}}); err != nil {
		tb.Fatal(err)
	}
	w.Write([]byte(`{"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"Say something."}]}`))
	w.WriteEnd(proto.End{})
	frames = append(frames, bytes.Clone(buf.Bytes()))
	buf.Reset()
	w.Hold()
	if err := w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{
		"Content-Type": {"application/json"}, "Date": {"Sun, 06 Dec 2026 04:10:00 GMT"},
		"X-Request-Id": {"req_9f8e7d6c5b4a3210"}, "Openai-Processing-Ms": {"312"}}}); err != nil {
		tb.Fatal(err)
	}
	w.Write([]byte(`{"id":"chatcmpl-AbC123xyzQW3","object":"chat.completion","created":1733450000,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?","refusal":null},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28},` +
		`"system_fingerprint":"fp_0aa8d3e20b"}`))
	w.WriteEnd(proto.End{})
	return append(frames, bytes.Clone(buf.Bytes()))
}

// TestSmallWritesSkipHuffman pins the trade of zEntropyMin: the events of
// every family and a unary exchange's frames, all below it, are sent as
// small without Huffman-coded literals as with them (the table costs what
// it saves), so leaving it out costs the border nothing on them.
func TestSmallWritesSkipHuffman(t *testing.T) {
	writes := unaryFrames(t)
	for _, fam := range tunneltest.Families {
		for _, st := range tunneltest.SSEStreams(t, fam, 4, 30) {
			writes = append(writes, st...)
		}
	}
	var without, with int
	for _, p := range writes {
		if len(p) < zMinWrite {
			continue
		}
		if len(p) >= zEntropyMin {
			t.Fatalf("a %d-byte write is not below zEntropyMin", len(p))
		}
		b := encodeChunk(p)
		if b == nil {
			t.Fatalf("a %d-byte write was not compressed", len(p))
		}
		without += len(*b)
		putBuf(b)
		with += len(codec().enc.EncodeAll(p, nil)) - len(zstdMagic) + 2 // the chunk header: kind and a 1-byte length
	}
	t.Logf("%d writes: %d bytes without Huffman tables, %d with", len(writes), without, with)
	if without > with+with/100 {
		t.Errorf("small writes take %d bytes without Huffman tables, %d with: more than 1 %% lost", without, with)
	}
}

// BenchmarkUnaryChunk is the CPU cost of a unary exchange's two writes
// (request frames at the edge, answer frames at the relay) through the
// compression, encode and decode.
func BenchmarkUnaryChunk(b *testing.B) {
	frames := unaryFrames(b)
	var z zreader
	var src bytes.Reader
	dst := make([]byte, 64<<10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		f := frames[i%len(frames)]
		c := encodeChunk(f)
		if c == nil {
			b.Fatal("frame not compressed")
		}
		src.Reset(*c)
		n, err := z.read(&src, dst)
		putBuf(c)
		if err != nil || !bytes.Equal(dst[:n], f) {
			b.Fatalf("decode: %d bytes, %v", n, err)
		}
	}
}

// rwc is a stream of either kind: tunnel.Stream or a raw *quic.Stream.
type rwc interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// peer is one end of a negotiation case: the version of the code and its
// setting.
type peer int

const (
	peerNew peer = iota // this package, compression on (the default)
	peerOff             // this package, compression off
	peerOld             // quic-go speaking only the original ALPN: a build before compression
)

func (p peer) String() string { return [...]string{"new", "off", "old"}[p] }

// TestCompressionNegotiation: an edge and a relay compress only when both
// offer it; with an old peer on either side, or compression off on either
// side, the streams are the plain bytes, and every pairing round-trips
// byte for byte.
func TestCompressionNegotiation(t *testing.T) {
	events := tunneltest.SSEStreams(t, tunneltest.Families[0], 1, 20)[0]
	payload := bytes.Join(events, nil)
	tests := []struct {
		edge, relay peer
		compressed  bool
	}{
		{peerNew, peerNew, true},
		{peerOff, peerNew, false},
		{peerNew, peerOff, false},
		{peerOff, peerOff, false},
		{peerNew, peerOld, false},
		{peerOld, peerNew, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("edge %v, relay %v", tt.edge, tt.relay), func(t *testing.T) {
			pki := tunneltest.NewPKI(t, "quic-test")
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			// Each side's stream: the package's own, or raw quic-go for an
			// old peer, which reads and writes the bytes as they are.
			var edgeStream, relayStream rwc
			var edgeSess, relaySess *session
			var addr string
			relayCh := make(chan rwc, 1)
			if tt.relay == peerOld {
				addr = oldRelay(t, pki.ServerConfig(), relayCh)
			} else {
				ln, err := Listen(listenUDP(t), pki.ServerConfig(), configFor(tt.relay))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				addr = ln.Addr().String()
				go func() {
					s, err := ln.Accept(ctx)
					if err != nil {
						relayCh <- nil
						return
					}
					relaySess = s.(*session)
					defer func() {
						<-ctx.Done()
						s.Close()
					}()
					st, err := s.AcceptStream(ctx)
					if err != nil {
						relayCh <- nil
						return
					}
					relayCh <- st
				}()
			}
			if tt.edge == peerOld {
				edgeStream = oldEdge(t, ctx, addr, pki.ClientConfig())
			} else {
				d, err := NewDialer(addr, pki.ClientConfig(), configFor(tt.edge))
				if err != nil {
					t.Fatal(err)
				}
				s, err := d.Dial(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				edgeSess = s.(*session)
				st, err := s.OpenStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				edgeStream = st
			}
			// The edge writes; the relay must read the same bytes and
			// answers with them; the edge must read them back.
			go func() {
				edgeStream.Write(payload)
			}()
			relayStream = <-relayCh
			if relayStream == nil {
				t.Fatal("relay accepted no stream")
			}
			edgeStream.SetDeadline(time.Now().Add(5 * time.Second))
			relayStream.SetDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(payload))
			if _, err := io.ReadFull(relayStream, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("relay read %q, %v; want the edge's bytes", got, err)
			}
			go func() {
				relayStream.Write(payload)
			}()
			if _, err := io.ReadFull(edgeStream, got); err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("edge read %q, %v; want the relay's bytes", got, err)
			}
			edgeStream.Close()
			relayStream.Close()
			for side, s := range map[string]*session{"edge": edgeSess, "relay": relaySess} {
				if s != nil && s.compressed != tt.compressed {
					t.Errorf("%s: compressed = %v, want %v", side, s.compressed, tt.compressed)
				}
			}
		})
	}
}

func configFor(p peer) Config {
	if p == peerOff {
		return Config{Compression: CompressionOff}
	}
	return Config{}
}

// oldRelay serves one session the way a relay before compression did:
// only ALPN, the welcome byte, streams carrying the plain bytes. The
// accepted stream goes to ch.
func oldRelay(t *testing.T, tc *tls.Config, ch chan<- rwc) string {
	t.Helper()
	tc = tc.Clone()
	tc.NextProtos = []string{ALPN}
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tr := &quic.Transport{Conn: listenUDP(t)}
	t.Cleanup(func() { tr.Close(); tr.Conn.Close() })
	ln, err := tr.Listen(tc, Config{}.withDefaults().quicConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := ln.Accept(t.Context())
		if err != nil {
			ch <- nil
			return
		}
		if c.ConnectionState().TLS.NegotiatedProtocol != ALPN {
			t.Errorf("old relay negotiated %q", c.ConnectionState().TLS.NegotiatedProtocol)
		}
		if err := welcome(c); err != nil {
			ch <- nil
			return
		}
		st, err := c.AcceptStream(t.Context())
		if err != nil {
			ch <- nil
			return
		}
		ch <- st
		<-t.Context().Done()
		c.CloseWithError(0, "")
	}()
	return ln.Addr().String()
}

// oldEdge dials the way an edge before compression did and returns its
// stream.
func oldEdge(t *testing.T, ctx context.Context, addr string, tc *tls.Config) rwc {
	t.Helper()
	tc = tc.Clone()
	tc.NextProtos = []string{ALPN}
	c, err := quic.DialAddr(ctx, addr, tc, Config{}.withDefaults().quicConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseWithError(0, "") })
	if err := awaitWelcome(ctx, c); err != nil {
		t.Fatal(err)
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// BenchmarkEventChunk is the CPU cost of one SSE event through the
// compression (encode on the relay, decode on the edge), and the bytes per
// event on the stream, for each family. Events below zMinWrite (OpenAI's
// "data: [DONE]") travel raw and are left out.
func BenchmarkEventChunk(b *testing.B) {
	for _, fam := range tunneltest.Families {
		b.Run(fam.Name, func(b *testing.B) {
			var events [][]byte
			for _, st := range tunneltest.SSEStreams(b, fam, 16, 50) {
				for _, ev := range st {
					if len(ev) >= zMinWrite { // "data: [DONE]" goes raw
						events = append(events, ev)
					}
				}
			}
			var in, out int
			var z zreader
			var src bytes.Reader
			dst := make([]byte, 64<<10)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				ev := events[i%len(events)]
				c := encodeChunk(ev)
				if c == nil {
					b.Fatal("event not compressed")
				}
				in += len(ev)
				out += len(*c)
				src.Reset(*c)
				n, err := z.read(&src, dst)
				putBuf(c)
				if err != nil || !bytes.Equal(dst[:n], ev) {
					b.Fatalf("decode: %d bytes, %v", n, err)
				}
			}
			b.ReportMetric(float64(out)/float64(b.N), "B/event")
			b.ReportMetric(float64(in)/float64(b.N), "plainB/event")
		})
	}
}

// TestCompressionSettings: the binaries' one setting maps onto QUIC (only
// off turns it off), and a value quictun does not know is refused before
// any socket is used.
func TestCompressionSettings(t *testing.T) {
	for _, tt := range []struct {
		setting, quic string
	}{{"", ""}, {"deflate", ""}, {"off", CompressionOff}} {
		if got := CompressionSetting(tt.setting); got != tt.quic {
			t.Errorf("CompressionSetting(%q) = %q, want %q", tt.setting, got, tt.quic)
		}
	}
	for _, tt := range []struct {
		value string
		ok    bool
		alpn  []string
	}{
		{"", true, []string{alpnZstd1, ALPN}},
		{CompressionZstd, true, []string{alpnZstd1, ALPN}},
		{CompressionOff, true, []string{ALPN}},
		{"deflate", false, nil},
		{"gzip", false, nil},
	} {
		err := ValidCompression(tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("ValidCompression(%q) = %v", tt.value, err)
		}
		if _, derr := NewDialer("127.0.0.1:1", tunneltest.NewPKI(t, "x").ClientConfig(), Config{Compression: tt.value}); (derr == nil) != tt.ok {
			t.Errorf("NewDialer with compression %q: %v", tt.value, derr)
		}
		if tt.ok && !slices.Equal(Config{Compression: tt.value}.protocols(), tt.alpn) {
			t.Errorf("compression %q offers %v, want %v", tt.value, Config{Compression: tt.value}.protocols(), tt.alpn)
		}
	}
}

// TestCompressOnlyOnSlowPaths: a compressing session compresses writes when
// the connection's minimum RTT reaches compressMinRTT (zero: any path) and
// writes raw chunks on a faster path, which quic-go's byte count shows. The
// count includes whatever else the connection sends meanwhile (acks, path
// MTU probes of ~1.4 KB each early in a connection's life), so the events
// are many: about 115 KB, which compress to about a fifth.
func TestCompressOnlyOnSlowPaths(t *testing.T) {
	events := tunneltest.SSEStreams(t, tunneltest.Families[0], 1, 400)[0]
	payload := len(bytes.Join(events, nil))
	p := conformancePair(t, tunneltest.PairOptions{})
	edge := p.Client.(*session)
	for _, tc := range tunneltest.CompressPaths {
		t.Run(tc.Name, func(t *testing.T) {
			// Set before the stream's writer starts, which reads it.
			edge.compressMinRTT = tc.MinRTT
			before := edge.conn.ConnectionStats().BytesSent
			roundTrip(t, p.Client, p.Server, events, 32<<10)
			sent := int(edge.conn.ConnectionStats().BytesSent - before)
			t.Logf("%d event bytes, %d bytes sent", payload, sent)
			if compressed := sent < payload/2; compressed != tc.Compressed {
				t.Errorf("%d event bytes took %d bytes on the wire: compressed %v, want %v", payload, sent, compressed, tc.Compressed)
			}
		})
	}
}
