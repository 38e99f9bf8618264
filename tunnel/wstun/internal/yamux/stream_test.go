package yamux

import (
	"bytes"
	"io"
	"net"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDrainedStreamHoldsNoBuffer: once a Read has taken every byte a stream
// received, the stream holds no receive buffer (the fork's change: upstream
// kept it, grown to the largest burst, for the stream's life), and the
// bytes arrive whole, for frames below and above the pooled size.
func TestDrainedStreamHoldsNoBuffer(t *testing.T) {
	a, b := net.Pipe()
	client, err := Client(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := Server(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	out, err := client.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := server.AcceptStream()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()

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
