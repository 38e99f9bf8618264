// Package yamux is Strait's fork of github.com/hashicorp/yamux v0.1.2
// (Mozilla Public License 2.0, see LICENSE), the stream multiplexer that
// wstun runs over a WebSocket connection.
//
// Upstream, every frame a stream sends goes through one channel to one send
// loop, and the sender waits for the loop to have written it: two goroutine
// handoffs per frame, several per request, on both tiers. wstun's
// connection queues whole frames without blocking and orders them itself
// (tunnel/wstun/sched.go), so the fork's changes are:
//
//   - a connection that implements FrameWriter gets each frame (header and
//     body) from the sending goroutine itself, and the session runs no send
//     loop; other connections keep upstream's loop;
//   - Stream.WriteLazy hands its data frames to such a connection marked
//     as frames no peer waits on (LazyFrameWriter), which it may send with
//     the next frame instead of alone;
//   - OpenStreamContext gives up waiting for a free open (AcceptBacklog
//     opens unacknowledged) when its context ends;
//   - StreamOpenTimeout is a timer per open stream, not a goroutine;
//   - a stream's receive buffer goes back to a pool once a Read drains it
//     (stream.go, recvPool), instead of staying, grown to the largest burst,
//     for the stream's life;
//   - a stream keeps its deadlines as Unix nanoseconds: setting one
//     allocates nothing (upstream boxed a time.Time in an atomic.Value).
//
// Everything else is upstream's code, unchanged; the tests that cover it
// are wstun's (the transport conformance suite runs over this package),
// beside this package's own for the changes.
package yamux
