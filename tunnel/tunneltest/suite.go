package tunneltest

import (
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// Transport names one implementation of the tunnel contract for Run and
// RunBenchmarks.
type Transport struct {
	// Name is the transport's name, as its sessions report it in Info.
	Name tunnel.Transport
	// Pair connects a fresh client (edge) session to a fresh server (relay)
	// session configured with o, over loopback. Everything it creates, the
	// sessions included, is released through tb.Cleanup; failures call
	// tb.Fatal.
	Pair func(tb testing.TB, o PairOptions) Pair
	// ResetVisible says the peer of a Reset stream fails with
	// tunnel.ErrStreamReset on Read and Write (QUIC has a reset frame). When
	// false the peer's Read returns io.EOF and its Write is not failed
	// (yamux has only FIN); see the tunnel package doc.
	ResetVisible bool
	// BufferedExact says Stream.Buffered counts the bytes received and not
	// read (wstun counts them); when false it only bounds them (quic-go
	// does not tell).
	BufferedExact bool
}

// PairOptions configures both ends of a Pair. Zero fields leave the
// transport's defaults.
type PairOptions struct {
	// Heartbeat and HeartbeatTimeout map to the transports' fields of the
	// same names.
	Heartbeat, HeartbeatTimeout time.Duration
	// StreamWindow is the per-stream receive window in bytes. The suite
	// uses at least 256 KiB, the smallest window yamux accepts.
	StreamWindow uint64
	// ViaProxy routes the session through a faultnet proxy (TCP or UDP, as
	// the transport needs) and returns it in Pair.Proxy.
	ViaProxy bool
}

// Pair is a connected client and server session.
type Pair struct {
	Client, Server tunnel.Session
	// Proxy impairs the path between them; nil unless PairOptions.ViaProxy.
	Proxy Impairer
}

// Impairer is the runtime control of a faultnet proxy (*faultnet.TCPProxy
// and *faultnet.UDPProxy implement it).
type Impairer interface {
	SetBlackhole(on bool)
	SetDelay(d time.Duration)
	SetRate(bytesPerSec int64)
}

// Run checks every property of the tunnel contract against tr. Subtests run
// one after another: several measure time or heap and would disturb each
// other in parallel.
func Run(t *testing.T, tr Transport) {
	t.Run("Info", func(t *testing.T) { testInfo(t, tr) })
	t.Run("ConcurrentStreams", func(t *testing.T) { testConcurrentStreams(t, tr) })
	t.Run("OpenBeforeAccept", func(t *testing.T) { testOpenBeforeAccept(t, tr) })
	t.Run("HalfClose", func(t *testing.T) { testHalfClose(t, tr) })
	t.Run("Shrink", func(t *testing.T) { testShrink(t, tr) })
	t.Run("Close", func(t *testing.T) { testClose(t, tr) })
	t.Run("Context", func(t *testing.T) { testContext(t, tr) })
	t.Run("Reset", func(t *testing.T) {
		t.Run("ByOpener", func(t *testing.T) { testReset(t, tr, true) })
		t.Run("ByAcceptor", func(t *testing.T) { testReset(t, tr, false) })
	})
	t.Run("Backpressure", func(t *testing.T) { testBackpressure(t, tr) })
	t.Run("WriterMemory", func(t *testing.T) { testWriterMemory(t, tr) })
	t.Run("Buffered", func(t *testing.T) { testBuffered(t, tr) })
	t.Run("Isolation", func(t *testing.T) { testIsolation(t, tr) })
	t.Run("Heartbeat", func(t *testing.T) { testHeartbeat(t, tr) })
	t.Run("LivenessUnderLoad", func(t *testing.T) { testLivenessUnderLoad(t, tr) })
	t.Run("SessionClose", func(t *testing.T) { testSessionClose(t, tr) })
	t.Run("NetConn", func(t *testing.T) { testNetConn(t, tr) })
}
