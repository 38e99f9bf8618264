package wstun

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/strait/strait/tunnel/wstun/internal/yamux"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// The peers here that predate compression are built from the plain path of
// this package (newWSConn without negotiated), which is byte for byte what
// earlier versions put on the wire.

const negotiateTimeout = 10 * time.Second

// peerStream is what the round trip needs of either kind of stream.
type peerStream interface {
	io.ReadWriter
	SetDeadline(time.Time) error
}

// oldRelay serves the tunnel endpoint like a relay built before compression:
// it answers the upgrade without Strait-Compress and runs yamux on plain
// messages. It reports the Strait-Compress header each request offered.
func oldRelay(t *testing.T, pki *tunneltest.PKI) (addr string, muxes <-chan *yamux.Session, offers <-chan string) {
	t.Helper()
	_, ycfg, tc, err := prepare(Config{}, pki.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	muxCh := make(chan *yamux.Session, 1)
	offerCh := make(chan string, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offerCh <- r.Header.Get(compressHeader)
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mux, err := yamux.Server(newWSConn(ws), ycfg)
		if err != nil {
			ws.Close()
			return
		}
		muxCh <- mux
	})}
	ln := tls.NewListener(tunneltest.Listen(t), tc)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String(), muxCh, offerCh
}

// dialOld connects like an edge built before compression: no offer, plain
// messages. It returns the yamux client and the upgrade response's
// Strait-Compress header.
func dialOld(t *testing.T, addr string, pki *tunneltest.PKI) (*yamux.Session, string) {
	t.Helper()
	_, ycfg, tc, err := prepare(Config{}, pki.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
	defer cancel()
	ws, resp, err := (&websocket.Dialer{TLSClientConfig: tc}).DialContext(ctx, "wss://"+addr+Path, nil)
	if err != nil {
		t.Fatalf("old edge dial: %v", err)
	}
	resp.Body.Close()
	mux, err := yamux.Client(newWSConn(ws), ycfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mux.Close() })
	return mux, resp.Header.Get(compressHeader)
}

// TestCompressionNegotiation connects every pairing of a new edge or relay
// (compression default or off) with a new or old peer, checks that a stream
// round-trips byte-exact, and that the session is compressed exactly when
// both ends are new and neither has it off.
func TestCompressionNegotiation(t *testing.T) {
	newCfg := func(compression string, stats *Stats) Config {
		return Config{HandshakeTimeout: 5 * time.Second, Compression: compression, Stats: stats}
	}
	cases := []struct {
		name           string
		edge, relay    string // "new", "off" (new with compression off) or "old"
		wantCompressed bool
	}{
		{"new edge, new relay", "new", "new", true},
		{"new edge, relay off", "new", "off", false},
		{"edge off, new relay", "off", "new", false},
		{"new edge, old relay", "new", "old", false},
		{"old edge, new relay", "old", "new", false},
		{"edge off, old relay", "off", "old", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := tunneltest.NewPKI(t, "")
			var edgeStats, relayStats Stats
			var edgeOpen func() peerStream
			var relayAccept func() peerStream
			var addr string
			var newRelay *Listener
			if tc.relay == "old" {
				a, muxes, offers := oldRelay(t, pki)
				addr = a
				relayAccept = func() peerStream {
					select {
					case mux := <-muxes:
						t.Cleanup(func() { mux.Close() })
						if got, want := <-offers, map[bool]string{true: "", false: "deflate"}[tc.edge == "off"]; got != want {
							t.Errorf("old relay saw Strait-Compress %q, want %q", got, want)
						}
						st, err := mux.AcceptStream()
						if err != nil {
							t.Fatalf("old relay accept: %v", err)
						}
						return st
					case <-time.After(negotiateTimeout):
						t.Fatal("old relay: no session")
						return nil
					}
				}
			} else {
				ln, err := Listen(tunneltest.Listen(t), pki.ServerConfig(), newCfg(map[bool]string{true: "off"}[tc.relay == "off"], &relayStats))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				addr, newRelay = ln.Addr().String(), ln
			}
			if tc.edge == "old" {
				mux, answered := dialOld(t, addr, pki)
				if answered != "" {
					t.Errorf("new relay answered Strait-Compress %q to an edge that offered nothing", answered)
				}
				edgeOpen = func() peerStream {
					st, err := mux.OpenStream()
					if err != nil {
						t.Fatalf("old edge open: %v", err)
					}
					return st
				}
			} else {
				d, err := NewDialer(addr, pki.ClientConfig(), newCfg(map[bool]string{true: "off"}[tc.edge == "off"], &edgeStats))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
				defer cancel()
				sess, err := d.Dial(ctx)
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				t.Cleanup(func() { sess.Close() })
				edgeOpen = func() peerStream {
					st, err := sess.OpenStream(ctx)
					if err != nil {
						t.Fatalf("OpenStream: %v", err)
					}
					t.Cleanup(func() { st.Close() })
					return st
				}
			}
			if newRelay != nil {
				relayAccept = func() peerStream { return acceptFirstStream(t, newRelay) }
			}

			payload := bytes.Repeat([]byte(`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`+"\n\n"), 100)
			roundTrip(t, edgeOpen, relayAccept, payload)

			for _, side := range []struct {
				name  string
				kind  string
				stats *Stats
			}{{"edge", tc.edge, &edgeStats}, {"relay", tc.relay, &relayStats}} {
				if side.kind == "old" {
					continue
				}
				payloadOut, wireOut := side.stats.Out()
				payloadIn, wireIn := side.stats.In()
				if payloadOut == 0 || payloadIn == 0 {
					t.Fatalf("%s counted nothing: out %d, in %d", side.name, payloadOut, payloadIn)
				}
				if compressed := wireOut < payloadOut && wireIn < payloadIn; compressed != tc.wantCompressed {
					t.Errorf("%s: out %d→%d bytes, in %d→%d: compressed %v, want %v",
						side.name, payloadOut, wireOut, wireIn, payloadIn, compressed, tc.wantCompressed)
				}
				if !tc.wantCompressed && (wireOut != payloadOut || wireIn != payloadIn) {
					t.Errorf("%s: plain session counts differ: out %d→%d, in %d→%d", side.name, payloadOut, wireOut, wireIn, payloadIn)
				}
			}
		})
	}
}

// acceptFirstStream accepts the next session on ln and the first stream on
// it; both are closed when the test ends.
func acceptFirstStream(t *testing.T, ln *Listener) peerStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
	defer cancel()
	sess, err := ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	st, err := sess.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// roundTrip sends payload from a stream the edge opens to the relay, which
// sends it back; both copies must arrive byte-exact.
func roundTrip(t *testing.T, open, accept func() peerStream, payload []byte) {
	t.Helper()
	est := open()
	est.SetDeadline(time.Now().Add(negotiateTimeout))
	sent := make(chan error, 1)
	go func() {
		_, err := est.Write(payload)
		sent <- err
	}()
	rst := accept()
	rst.SetDeadline(time.Now().Add(negotiateTimeout))
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(rst, got); err != nil {
		t.Fatalf("relay read: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("relay received different bytes")
	}
	if err := <-sent; err != nil {
		t.Fatalf("edge write: %v", err)
	}
	if _, err := rst.Write(got); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	back := make([]byte, len(payload))
	if _, err := io.ReadFull(est, back); err != nil {
		t.Fatalf("edge read: %v", err)
	}
	if !bytes.Equal(back, payload) {
		t.Fatal("edge received different bytes")
	}
}

// TestCompressOnlyOnSlowPaths: a session that negotiated compression
// compresses when its socket's round trip reaches CompressMinRTT (zero: any
// path), and sends raw messages, one marker byte over the payload each, on
// a path faster than that: loopback is far below an hour.
func TestCompressOnlyOnSlowPaths(t *testing.T) {
	payload := bytes.Join(tunneltest.SSEStreams(t, tunneltest.Families[0], 1, 40)[0], nil)
	for _, tc := range tunneltest.CompressPaths {
		t.Run(tc.Name, func(t *testing.T) {
			var edgeStats, relayStats Stats
			cfg := func(s *Stats) Config {
				return Config{HandshakeTimeout: 5 * time.Second, CompressMinRTT: tc.MinRTT, Stats: s}
			}
			edge, relay := loopbackPair(t, tunneltest.Listen(t), cfg(&edgeStats), cfg(&relayStats))
			ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
			defer cancel()
			stream := func(s interface {
				OpenStream(context.Context) (tunnel.Stream, error)
			}) func() peerStream {
				return func() peerStream {
					st, err := s.OpenStream(ctx)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { st.Close() })
					return st
				}
			}
			accept := func() peerStream {
				st, err := relay.AcceptStream(ctx)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			roundTrip(t, stream(edge), accept, payload)
			for side, st := range map[string]*Stats{"edge": &edgeStats, "relay": &relayStats} {
				payloadOut, wireOut := st.Out()
				if payloadOut < uint64(len(payload)) {
					t.Fatalf("%s sent %d payload bytes, want at least %d", side, payloadOut, len(payload))
				}
				if compressed := wireOut < payloadOut; compressed != tc.Compressed {
					t.Errorf("%s: %d payload bytes went as %d: compressed %v, want %v", side, payloadOut, wireOut, compressed, tc.Compressed)
				}
			}
		})
	}
}
