package wstun_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// TestSessionUp checks what each side learns about the other: transport,
// addresses, the peer's certificate name, TLS 1.3 and the ALPN the WebSocket
// upgrade needs.
func TestSessionUp(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	var mu sync.Mutex
	seen := map[string]tls.ConnectionState{}
	record := func(side string) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			mu.Lock()
			seen[side] = cs
			mu.Unlock()
			return nil
		}
	}
	sc := pki.ServerConfig()
	sc.VerifyConnection = record("relay") // prepare clones the config, hooks included
	cc := pki.ClientConfig()
	cc.VerifyConnection = record("edge")

	cfg := testConfig()
	ln, err := listenWith(t, sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := dial(t, ln.Addr().String(), cc, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	relay := accept(t, ln)

	for _, c := range []struct {
		side string
		sess tunnel.Session
		peer string
	}{{"edge", edge, tunneltest.RelayName}, {"relay", relay, tunneltest.EdgeName}} {
		info := c.sess.Info()
		if info.Transport != "ws" {
			t.Errorf("%s: Transport = %q, want ws", c.side, info.Transport)
		}
		if info.PeerName != c.peer {
			t.Errorf("%s: PeerName = %q, want %q", c.side, info.PeerName, c.peer)
		}
		if c.sess.Err() != nil {
			t.Errorf("%s: Err = %v on a live session", c.side, c.sess.Err())
		}
		mu.Lock()
		cs, ok := seen[c.side]
		mu.Unlock()
		if !ok {
			t.Errorf("%s: VerifyConnection never ran", c.side)
		} else if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "http/1.1" {
			t.Errorf("%s: TLS version %s, ALPN %q; want TLS 1.3, http/1.1",
				c.side, tls.VersionName(cs.Version), cs.NegotiatedProtocol)
		}
	}
	if got, want := edge.Info().LocalAddr.String(), relay.Info().RemoteAddr.String(); got != want {
		t.Errorf("edge LocalAddr %s != relay RemoteAddr %s", got, want)
	}
	if got, want := edge.Info().RemoteAddr.String(), ln.Addr().String(); got != want {
		t.Errorf("edge RemoteAddr %s != listener %s", got, want)
	}
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	if rtt, err := edge.Ping(ctx); err != nil || rtt <= 0 {
		t.Errorf("Ping = %v, %v; want a positive RTT", rtt, err)
	}
}

// TestConcurrentStreamsEcho pushes 50 streams of random sizes up to 2 MiB
// through one session at once. Each payload is preceded by its SHA-256, which
// the relay checks before echoing, and the edge checks the echo: both
// directions are verified, and the relay reads io.EOF only after all data.
func TestConcurrentStreamsEcho(t *testing.T) {
	const streams, maxSize = 50, 2 << 20
	p := newPair(t, testConfig())
	stop := serveEcho(t, p.relay)
	defer stop()

	src := rand.NewChaCha8([32]byte{1})
	rng := rand.New(src)
	payloads := make([][]byte, streams)
	for i := range payloads {
		payloads[i] = make([]byte, rng.IntN(maxSize+1))
		src.Read(payloads[i])
	}
	payloads[0] = nil // the empty stream: SYN, hash, FIN and nothing else

	var wg sync.WaitGroup
	ids := make(chan uint64, streams)
	for _, payload := range payloads {
		st := open(t, p.edge)
		ids <- st.ID()
		wg.Go(func() {
			if err := echoOne(st, payload); err != nil {
				t.Errorf("stream %d (%d bytes): %v", st.ID(), len(payload), err)
			}
		})
	}
	wg.Wait()
	close(ids)
	unique := map[uint64]bool{}
	for id := range ids {
		unique[id] = true
	}
	if len(unique) != streams {
		t.Errorf("%d distinct stream IDs for %d streams", len(unique), streams)
	}
}

// echoOne sends sum+payload, half-closes, and checks that exactly payload
// comes back followed by io.EOF.
func echoOne(st tunnel.Stream, payload []byte) error {
	sum := sha256.Sum256(payload)
	sent := async(func() (int, error) {
		if _, err := st.Write(sum[:]); err != nil {
			return 0, err
		}
		n, err := st.Write(payload)
		if err != nil {
			return n, err
		}
		return n, st.CloseWrite()
	})
	h := sha256.New()
	n, err := io.Copy(h, st)
	if err != nil {
		return fmt.Errorf("read echo after %d bytes: %w", n, err)
	}
	if r := <-sent; r.err != nil {
		return fmt.Errorf("write after %d bytes: %w", r.n, r.err)
	}
	if n != int64(len(payload)) || !bytes.Equal(h.Sum(nil), sum[:]) {
		return fmt.Errorf("echo: %d bytes with a different hash, want %d bytes", n, len(payload))
	}
	return nil
}

// serveEcho accepts streams on s and echoes each after verifying the SHA-256
// prefix. stop waits for every handler after ending the accept loop.
func serveEcho(t *testing.T, s tunnel.Session) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			st.SetDeadline(time.Now().Add(opTimeout))
			wg.Go(func() {
				defer st.Close()
				if err := echoVerified(st); err != nil {
					t.Errorf("relay stream %d: %v", st.ID(), err)
				}
			})
		}
	})
	return func() { cancel(); wg.Wait() }
}

func echoVerified(st tunnel.Stream) error {
	var want [sha256.Size]byte
	if _, err := io.ReadFull(st, want[:]); err != nil {
		return fmt.Errorf("read hash: %w", err)
	}
	h := sha256.New()
	// io.Copy returns nil only on io.EOF: the edge's CloseWrite arrived
	// after all of its data.
	if _, err := io.Copy(st, io.TeeReader(st, h)); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return errors.New("payload hash mismatch at the relay")
	}
	return st.CloseWrite()
}

// TestHalfClose: after the edge's CloseWrite the relay reads the data, then
// io.EOF, and can still answer on the same stream; the edge can no longer
// write.
func TestHalfClose(t *testing.T) {
	p := newPair(t, testConfig())
	st := open(t, p.edge)
	if _, err := st.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if _, err := st.Write([]byte("more")); err == nil {
		t.Error("Write after CloseWrite succeeded")
	} else {
		t.Logf("Write after CloseWrite: %v", err)
	}

	rst := acceptStream(t, p.relay)
	got, err := io.ReadAll(rst) // ReadAll stops at io.EOF only
	if err != nil || string(got) != "request" {
		t.Fatalf("relay read %q, %v; want %q then io.EOF", got, err, "request")
	}
	if n, err := rst.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("relay read again = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := rst.Write([]byte("response")); err != nil {
		t.Fatalf("relay write after peer's CloseWrite: %v", err)
	}
	if err := rst.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(st); err != nil || string(got) != "response" {
		t.Fatalf("edge read %q, %v; want %q then io.EOF", got, err, "response")
	}
}

// TestOpenStreamDoesNotWaitForPeer writes a whole request on a new stream
// before the relay has called AcceptStream: the bytes travel behind the
// opening frame and wait at the relay.
func TestOpenStreamDoesNotWaitForPeer(t *testing.T) {
	p := newPair(t, testConfig())
	req := bytes.Repeat([]byte("x"), 64<<10) // well inside yamux's initial 256 KiB window
	st := open(t, p.edge)
	r := await(t, "Write before AcceptStream", async(func() (int, error) { return st.Write(req) }), 2*time.Second)
	if r.err != nil || r.n != len(req) {
		t.Fatalf("Write before accept = %d, %v", r.n, r.err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rst := acceptStream(t, p.relay)
	if rst.ID() != st.ID() {
		t.Errorf("accepted stream %d, opened %d", rst.ID(), st.ID())
	}
	got, err := io.ReadAll(rst)
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("relay read %d bytes, %v; want %d", len(got), err, len(req))
	}
}

// TestStreamDeadline: a read deadline turns into a timeout net.Error (which
// net/http classifies), and the stream stays usable afterwards.
func TestStreamDeadline(t *testing.T) {
	p := newPair(t, testConfig())
	st := open(t, p.edge)
	st.Write([]byte("a"))
	rst := acceptStream(t, p.relay)
	io.ReadFull(rst, make([]byte, 1))

	st.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	r := await(t, "Read with deadline", async(func() (int, error) { return st.Read(make([]byte, 1)) }), 2*time.Second)
	if !isTimeout(r.err) {
		t.Fatalf("Read past deadline = %v; want a timeout net.Error", r.err)
	}
	st.SetReadDeadline(time.Now().Add(opTimeout))
	rst.Write([]byte("b"))
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		t.Fatalf("Read after a timeout: %v", err)
	}
}

// TestBackpressure: a relay that stops reading stalls the edge's writer after
// about one StreamWindow, while another stream on the same session still
// flows; reading again releases the writer.
func TestBackpressure(t *testing.T) {
	const window = 256 << 10 // yamux's minimum
	cfg := testConfig()
	cfg.StreamWindow = window
	p := newPair(t, cfg)

	stalled := open(t, p.edge)
	stalled.Write([]byte{0})
	rstalled := acceptStream(t, p.relay) // accepted, then never read until the end

	written := 1 + fillUntilBlocked(t, stalled) // the byte above counts against the window
	t.Logf("writer blocked after %d bytes (window %d)", written, window)
	if written < window || written >= 2*window+64<<10 {
		t.Errorf("writer blocked after %d bytes; want within [%d, %d)", written, window, 2*window+64<<10)
	}

	stop := serveEcho(t, p.relay)
	defer stop()
	payload := bytes.Repeat([]byte("flow"), 256<<10) // 1 MiB, four windows
	if err := echoOne(open(t, p.edge), payload); err != nil {
		t.Fatalf("second stream while the first is stalled: %v", err)
	}

	// Draining the stalled stream lets its writer continue.
	go io.Copy(io.Discard, rstalled)
	stalled.SetWriteDeadline(time.Now().Add(opTimeout))
	if _, err := stalled.Write(make([]byte, 2*window)); err != nil {
		t.Fatalf("Write after the reader resumed: %v", err)
	}
	stalled.Close()
}

// fillUntilBlocked writes 16 KiB chunks, each under a short write deadline,
// until one times out, and returns the bytes accepted (partial writes
// included).
func fillUntilBlocked(t *testing.T, st tunnel.Stream) int {
	t.Helper()
	chunk := make([]byte, 16<<10)
	total := 0
	for total < 64<<20 {
		st.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := st.Write(chunk)
		total += n
		if isTimeout(err) {
			return total
		}
		if err != nil {
			t.Fatalf("Write after %d bytes: %v", total, err)
		}
	}
	t.Fatalf("writer never blocked after %d bytes", total)
	return 0
}

// TestSessionCloseUnblocksStreams closes the edge session while a Read is
// blocked on each side and a Write is blocked on a full window, and pins
// what each call returns afterwards.
func TestSessionCloseUnblocksStreams(t *testing.T) {
	cfg := testConfig()
	cfg.StreamWindow = 256 << 10
	p := newPair(t, cfg)

	st := open(t, p.edge)
	st.Write([]byte("x"))
	rst := acceptStream(t, p.relay)
	io.ReadFull(rst, make([]byte, 1))
	full := open(t, p.edge)
	full.Write([]byte{0})
	acceptStream(t, p.relay) // accepted, never read
	full.SetWriteDeadline(time.Time{})

	edgeRead := async(func() (int, error) { return st.Read(make([]byte, 1)) })
	relayRead := async(func() (int, error) { return rst.Read(make([]byte, 1)) })
	edgeWrite := async(func() (int, error) { return full.Write(make([]byte, 1<<20)) })
	time.Sleep(100 * time.Millisecond) // let all three block
	for name, ch := range map[string]<-chan result{"edge Read": edgeRead, "relay Read": relayRead, "edge Write": edgeWrite} {
		select {
		case r := <-ch:
			t.Fatalf("%s returned before Close: %d, %v", name, r.n, r.err)
		default:
		}
	}

	start := time.Now()
	if err := p.edge.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, "edge Done", p.edge.Done(), time.Second)
	waitClosed(t, "relay Done", p.relay.Done(), 2*time.Second)

	// yamux marks every stream of a dead session closed, so a blocked Read
	// returns io.EOF on both sides, not ErrSessionClosed: a reader cannot
	// tell a session death from the peer's CloseWrite by the error alone.
	for name, ch := range map[string]<-chan result{"edge Read": edgeRead, "relay Read": relayRead} {
		r := await(t, name, ch, 2*time.Second)
		if r.err != io.EOF {
			t.Errorf("%s after session close = %v; yamux returns io.EOF", name, r.err)
		}
	}
	// yamux fails it with ErrStreamClosed; the adapter reports ErrSessionClosed.
	w := await(t, "edge Write", edgeWrite, 2*time.Second)
	if !errors.Is(w.err, tunnel.ErrSessionClosed) || errors.Is(w.err, tunnel.ErrStreamReset) {
		t.Errorf("blocked Write after session close = %d, %v; want ErrSessionClosed", w.n, w.err)
	}
	t.Logf("unblocked within %v; blocked Write returned %d bytes, %v", time.Since(start), w.n, w.err)
	if _, err := st.Write([]byte("y")); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("Write on a stream of a closed session = %v; want ErrSessionClosed", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	for _, c := range []struct {
		side string
		sess tunnel.Session
	}{{"edge", p.edge}, {"relay", p.relay}} {
		if err := c.sess.Err(); !errors.Is(err, tunnel.ErrSessionClosed) {
			t.Errorf("%s Err = %v; want ErrSessionClosed", c.side, err)
		}
		if _, err := c.sess.OpenStream(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
			t.Errorf("%s OpenStream after close = %v; want ErrSessionClosed", c.side, err)
		}
		if _, err := c.sess.AcceptStream(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
			t.Errorf("%s AcceptStream after close = %v; want ErrSessionClosed", c.side, err)
		}
		if _, err := c.sess.Ping(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
			t.Errorf("%s Ping after close = %v; want ErrSessionClosed", c.side, err)
		}
	}
}
