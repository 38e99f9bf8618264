package yamux

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// streamPair runs a client session on a and a server session on b and
// opens a stream from the client: out is its client end, in its server
// end. All is closed when the test ends.
func streamPair(t *testing.T, a, b net.Conn) (out, in *Stream) {
	t.Helper()
	client, err := Client(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := Server(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if out, err = client.OpenStream(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	if in, err = server.AcceptStream(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return out, in
}

// TestDrainedStreamHoldsNoBuffer: once a Read has taken every byte a stream
// received, the stream holds no receive buffer (the fork's change: upstream
// kept it, grown to the largest burst, for the stream's life), and the
// bytes arrive whole, for frames below and above the pooled size.
func TestDrainedStreamHoldsNoBuffer(t *testing.T) {
	a, b := net.Pipe()
	out, in := streamPair(t, a, b)
	for _, n := range []int{100, recvPoolSize, recvPoolSize + 1, 40 << 10} {
		want := bytes.Repeat([]byte{byte(n)}, n)
		wrote := make(chan error, 1)
		go func() { _, err := out.Write(want); wrote <- err }()
		got := make([]byte, n)
		if _, err := io.ReadFull(in, got); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if err := <-wrote; err != nil {
			t.Fatalf("write of %d bytes: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: read other bytes than written", n)
		}
		in.recvLock.Lock()
		held := in.recvBuf
		in.recvLock.Unlock()
		if held != nil {
			t.Errorf("after reading %d bytes the stream still holds a buffer of %d bytes", n, held.Cap())
		}
	}
}

// frameRecorder is a connection that takes whole frames (FrameWriter and
// LazyFrameWriter), writes them through, and records for each data frame
// whether it came lazily.
type frameRecorder struct {
	net.Conn
	mu   sync.Mutex
	lazy []bool
}

func (r *frameRecorder) WriteFrame(hdr, body []byte) error     { return r.write(hdr, body, false) }
func (r *frameRecorder) WriteLazyFrame(hdr, body []byte) error { return r.write(hdr, body, true) }

func (r *frameRecorder) write(hdr, body []byte, lazy bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if header(hdr).MsgType() == typeData {
		r.lazy = append(r.lazy, lazy)
	}
	_, err := r.Conn.Write(append(append([]byte(nil), hdr...), body...))
	return err
}

// TestWriteLazy: WriteLazy's data frames reach a LazyFrameWriter as lazy,
// Write's as not, and the peer reads both in order.
func TestWriteLazy(t *testing.T) {
	a, b := net.Pipe()
	rec := &frameRecorder{Conn: a}
	out, in := streamPair(t, rec, b)
	if _, err := out.WriteLazy([]byte("dispatched;")); err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("dispatched;answer"))
	if _, err := io.ReadFull(in, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "dispatched;answer" {
		t.Errorf("peer read %q", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.lazy) != 2 || !rec.lazy[0] || rec.lazy[1] {
		t.Errorf("data frames lazy: %v; want [true false]", rec.lazy)
	}
}

// TestDeadlines: setting a deadline allocates nothing (the fork's change:
// upstream boxed each time.Time), a past one times a waiting Read out, and
// the zero Time clears it.
func TestDeadlines(t *testing.T) {
	a, b := net.Pipe()
	out, in := streamPair(t, a, b)
	if _, err := out.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	soon := time.Now().Add(time.Hour)
	if n := testing.AllocsPerRun(100, func() {
		_ = in.SetReadDeadline(soon)
		_ = in.SetWriteDeadline(soon)
		_ = in.SetReadDeadline(time.Time{})
	}); n != 0 {
		t.Errorf("setting deadlines allocated %v times", n)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(in, buf[:1]); err != nil {
		t.Fatal(err)
	}
	for _, past := range []time.Time{time.Now().Add(-time.Second), time.Unix(0, 0)} {
		_ = in.SetReadDeadline(past)
		if _, err := in.Read(buf); err != ErrTimeout {
			t.Errorf("Read past a deadline of %v: %v; want ErrTimeout", past, err)
		}
	}
	_ = in.SetReadDeadline(time.Time{})
	go func() { _, _ = out.Write([]byte("y")) }()
	if n, err := in.Read(buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("Read with the deadline cleared: %q, %v", buf[:n], err)
	}
}
