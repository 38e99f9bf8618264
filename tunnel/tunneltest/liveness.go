package tunneltest

import (
	"testing"
	"time"
)

// testLivenessUnderLoad: a slow but live link, saturated by bulk data in the
// direction the heartbeat must cross, stays up for many heartbeat periods.
// Any frame received counts as life, and heartbeats do not wait behind
// queued data. A 1 MiB window drained at 512 KiB/s keeps up to 2 s of data
// queued ahead of anything sent after it, so a heartbeat that queued there
// would let 2 s pass without an answer. Heartbeat 200 ms and timeout 500 ms
// declare a peer dead after 700 ms of silence: under a third of that, yet
// loose enough that a process starved of CPU for a few hundred milliseconds
// (-race on a loaded two-core machine; 100 + 150 ms was seen to trip) is not
// mistaken for a dead peer.
func testLivenessUnderLoad(t *testing.T, tr Transport) {
	const heartbeat, timeout = 200 * time.Millisecond, 500 * time.Millisecond
	p := tr.Pair(t, PairOptions{Heartbeat: heartbeat, HeartbeatTimeout: timeout, StreamWindow: 1 << 20, ViaProxy: true})
	p.Proxy.SetRate(512 << 10)
	clientWrite, serverRead := upload(t, p) // returns once 1 MiB went through (~2 s)
	select {
	case <-p.Client.Done():
		t.Fatalf("client declared a live, busy peer dead: %v", p.Client.Err())
	case <-p.Server.Done():
		t.Fatalf("server declared a live, busy peer dead: %v", p.Server.Err())
	case <-time.After(time.Second):
	}
	p.Client.Close()
	p.Server.Close()
	<-clientWrite
	<-serverRead
}
