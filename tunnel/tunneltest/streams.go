package tunneltest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// testConcurrentStreams runs many echo streams at once, half opened by each
// side, with random payloads up to several MiB (smaller under -race). Each
// payload is preceded by its SHA-256, which the echoing side checks before
// it half-closes, and the opener checks the echo: both directions are
// verified, and the echoing side reads io.EOF only after all the data.
func testConcurrentStreams(t *testing.T, tr Transport) {
	streams, maxSize := 64, 4<<20
	if raceEnabled {
		streams, maxSize = 16, 2<<20
	}
	p := tr.Pair(t, PairOptions{})
	serve(t, p.Client)
	serve(t, p.Server)

	src := rand.NewChaCha8([32]byte{1})
	rng := rand.New(src)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[tunnel.Session]map[uint64]bool{p.Client: {}, p.Server: {}}
	for i := range streams {
		payload := make([]byte, rng.IntN(maxSize+1))
		if i == 0 {
			payload = nil // the empty stream: open, hash, FIN and nothing else
		}
		src.Read(payload)
		opener := p.Client
		if i%2 == 1 {
			opener = p.Server
		}
		st := openKind(t, opener, kindEcho)
		mu.Lock()
		if ids[opener][st.ID()] {
			t.Errorf("stream ID %d used twice on one session", st.ID())
		}
		ids[opener][st.ID()] = true
		mu.Unlock()
		wg.Go(func() {
			defer st.Close()
			if err := echoOne(st, payload); err != nil {
				t.Errorf("stream %d (%d bytes): %v", st.ID(), len(payload), err)
			}
		})
	}
	wg.Wait()
	waitNoStreams(t, p)
}

// testOpenBeforeAccept writes a whole 64 KiB request on a new stream before
// the peer calls AcceptStream: the contract says OpenStream does not wait
// for the peer, so the Write must complete within prompt (64 KiB fits the
// smallest initial window of both transports), and the bytes wait at the
// peer.
func testOpenBeforeAccept(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	req := bytes.Repeat([]byte("x"), 64<<10)
	ctx := t.Context()
	st, err := p.Client.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(opTimeout))
	r := Await(t, "Write before AcceptStream", Async(func() (int, error) { return st.Write(req) }), prompt)
	if r.Err != nil || r.N != len(req) {
		t.Fatalf("Write before accept = %d, %v", r.N, r.Err)
	}
	if err := st.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rst, err := p.Server.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	rst.SetDeadline(time.Now().Add(opTimeout))
	if rst.ID() != st.ID() {
		t.Errorf("accepted stream %d, opened %d", rst.ID(), st.ID())
	}
	got, err := io.ReadAll(rst)
	if err != nil || !bytes.Equal(got, req) {
		t.Fatalf("server read %d bytes, %v; want %d then io.EOF", len(got), err, len(req))
	}
}

// testHalfClose: after the opener's CloseWrite the peer reads the data, then
// io.EOF (again on a second Read), and can still answer on the same stream;
// the opener can read the answer but no longer write (its Write fails at
// once). Then both Close and the streams are released (NumStreams 0 within
// 2s).
func testHalfClose(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	a, b := connect(t, p.Client, p.Server)
	if _, err := a.Write([]byte("request")); err != nil {
		t.Fatal(err)
	}
	if err := a.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	r := Await(t, "Write after CloseWrite", Async(func() (int, error) { return a.Write([]byte("more")) }), prompt)
	if r.Err == nil {
		t.Error("Write after CloseWrite succeeded")
	}
	got, err := io.ReadAll(b) // ReadAll stops at io.EOF only
	if err != nil || string(got) != "request" {
		t.Fatalf("peer read %q, %v; want %q then io.EOF", got, err, "request")
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("peer read again = %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := b.Write([]byte("response")); err != nil {
		t.Fatalf("peer write after the opener's CloseWrite: %v", err)
	}
	if err := b.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(a); err != nil || string(got) != "response" {
		t.Fatalf("opener read %q, %v; want %q then io.EOF", got, err, "response")
	}
	a.Close()
	b.Close()
	waitNoStreams(t, p)
}

// testShrink: tunnel.Shrink loses nothing and leaves the stream usable,
// whether everything received was read or some of it is still unread.
func testShrink(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	a, b := connect(t, p.Client, p.Server)
	defer a.Close()
	defer b.Close()
	read := func(n int) string {
		t.Helper()
		buf := make([]byte, n)
		_ = b.SetReadDeadline(time.Now().Add(prompt)) // a lost byte fails here, not by hanging
		if k, err := io.ReadFull(b, buf); err != nil {
			t.Fatalf("read %q: %v", buf[:k], err)
		}
		return string(buf)
	}
	for _, step := range []struct {
		write      string
		read, want int // bytes read before Shrink, then after it
	}{
		{"request", 7, 0}, // all read: Shrink finds nothing
		{"partial", 3, 4}, // some unread (one frame): Shrink must keep it
		{"later", 0, 5},   // there or on its way: either way it arrives whole
	} {
		if _, err := a.Write([]byte(step.write)); err != nil {
			t.Fatal(err)
		}
		got := read(step.read)
		tunnel.Shrink(b)
		got += read(step.want)
		if got != step.write {
			t.Fatalf("read %q around Shrink; want %q", got, step.write)
		}
	}
	if _, err := b.Write([]byte("answer")); err != nil {
		t.Fatalf("write after Shrink: %v", err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "answer" {
		t.Fatalf("peer read %q, %v after Shrink", buf, err)
	}
}

// testClose: Close after writing delivers the data and then io.EOF to the
// peer. Locally, Close fails a blocked Read and a Write blocked on a full
// window within prompt, and every later Read and Write at once, with an
// error matching net.ErrClosed (the net.Conn convention net/http relies
// on). Streams closed on both ends are released.
func testClose(t *testing.T, tr Transport) {
	const window = 256 << 10
	p := tr.Pair(t, PairOptions{StreamWindow: window})

	a, b := connect(t, p.Client, p.Server)
	data := bytes.Repeat([]byte("close "), 20_000)
	if _, err := a.Write(data); err != nil {
		t.Fatal(err)
	}
	a.Close()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("peer read %d bytes, %v after Close; want %d then io.EOF", len(got), err, len(data))
	}
	b.Close()

	c, d := connect(t, p.Client, p.Server)
	fillUntilBlocked(t, c, 64*window) // d never reads
	rd := readBlocked(c)
	wr := writeBlocked(c, window)
	time.Sleep(50 * time.Millisecond)
	blocked(t, "Read", rd)
	blocked(t, "Write on a full window", wr)
	c.Close()
	for name, ch := range map[string]<-chan Result{"blocked Read": rd, "blocked Write": wr} {
		if r := Await(t, name+" after Close", ch, prompt); !errors.Is(r.Err, net.ErrClosed) {
			t.Errorf("%s after Close = %d, %v; want net.ErrClosed", name, r.N, r.Err)
		}
	}
	for name, call := range map[string]func() (int, error){
		"Read":  func() (int, error) { return c.Read(make([]byte, 1)) },
		"Write": func() (int, error) { return c.Write([]byte("x")) },
	} {
		if r := Await(t, name+" after Close", Async(call), prompt); !errors.Is(r.Err, net.ErrClosed) {
			t.Errorf("%s after Close = %d, %v; want net.ErrClosed", name, r.N, r.Err)
		}
	}
	d.Close()
	waitNoStreams(t, p)
}

// testReset: Reset by one end fails that end's blocked Read and blocked
// Write within prompt, and every later call at once, with ErrStreamReset.
// The other end learns within prompt: its blocked Read fails with
// ErrStreamReset where the transport has a reset frame (ResetVisible), else
// returns io.EOF; with a reset frame its Write blocked on a full window
// fails with ErrStreamReset too.
func testReset(t *testing.T, tr Transport, byOpener bool) {
	const window = 256 << 10
	p := tr.Pair(t, PairOptions{StreamWindow: window})
	pick := func(opened, accepted tunnel.Stream) (resetter, peer tunnel.Stream) {
		if byOpener {
			return opened, accepted
		}
		return accepted, opened
	}
	// Stream 1: both ends blocked in Read. Stream 2: both ends blocked in
	// Write, each on a full window the other never reads.
	r1, p1 := pick(connect(t, p.Client, p.Server))
	r2, p2 := pick(connect(t, p.Client, p.Server))
	fillUntilBlocked(t, r2, 64*window)
	fillUntilBlocked(t, p2, 64*window)
	localRead, peerRead := readBlocked(r1), readBlocked(p1)
	localWrite, peerWrite := writeBlocked(r2, window), writeBlocked(p2, window)
	time.Sleep(50 * time.Millisecond)
	for name, ch := range map[string]<-chan Result{"local Read": localRead, "peer Read": peerRead,
		"local Write": localWrite, "peer Write": peerWrite} {
		blocked(t, name, ch)
	}

	r1.Reset()
	r2.Reset()
	for name, ch := range map[string]<-chan Result{"local Read": localRead, "local Write": localWrite} {
		if r := Await(t, name+" after Reset", ch, prompt); !errors.Is(r.Err, tunnel.ErrStreamReset) {
			t.Errorf("%s after Reset = %d, %v; want ErrStreamReset", name, r.N, r.Err)
		}
	}
	if _, err := r1.Read(make([]byte, 1)); !errors.Is(err, tunnel.ErrStreamReset) {
		t.Errorf("Read after Reset = %v; want ErrStreamReset", err)
	}
	if _, err := r1.Write([]byte("x")); !errors.Is(err, tunnel.ErrStreamReset) {
		t.Errorf("Write after Reset = %v; want ErrStreamReset", err)
	}

	r := Await(t, "peer's Read after Reset", peerRead, prompt)
	switch {
	case tr.ResetVisible && !errors.Is(r.Err, tunnel.ErrStreamReset):
		t.Errorf("peer's Read after Reset = %d, %v; want ErrStreamReset", r.N, r.Err)
	case !tr.ResetVisible && r.Err != io.EOF:
		t.Errorf("peer's Read after Reset = %d, %v; want io.EOF (no reset frame)", r.N, r.Err)
	}
	if tr.ResetVisible {
		r := Await(t, "peer's Write after Reset", peerWrite, prompt)
		if !errors.Is(r.Err, tunnel.ErrStreamReset) {
			t.Errorf("peer's Write after Reset = %d, %v; want ErrStreamReset", r.N, r.Err)
		}
	}
	if !tr.ResetVisible {
		// Without a reset frame the peer's Write stays blocked until the
		// peer gives up: its own Close ends it.
		p2.Close()
		Await(t, "peer's Write after its own Close", peerWrite, prompt)
	}
}

// testContext: a stream's Context stays live while its peer writes and
// while it is merely idle, and is canceled once the peer closes the stream
// or the session ends. The relay cancels the upstream call on it when the
// edge leaves, with no goroutine parked in Read per stream.
func testContext(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	a, b := connect(t, p.Client, p.Server)
	if _, err := a.Write([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := b.Context().Err(); err != nil {
		t.Fatalf("Context canceled while the peer is still there: %v", err)
	}
	a.Close()
	waitClosed(t, "the Context of a stream whose peer closed it", b.Context().Done(), opTimeout)

	c, d := connect(t, p.Client, p.Server)
	p.Client.Close()
	waitClosed(t, "the Context of a stream whose session ended (opener)", c.Context().Done(), opTimeout)
	waitClosed(t, "the Context of a stream whose session ended (acceptor)", d.Context().Done(), opTimeout)
}
