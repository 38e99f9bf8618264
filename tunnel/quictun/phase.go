package quictun

import (
	"context"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// Following the sender's slow start.
//
// quic-go's sender keeps its slow-start threshold for the connection's
// life: once slow start has ended, by a loss or by hybrid slow start on a
// rising round trip, the window grows by about a packet per round trip
// (cubic's first seconds), however long the session idles in between. A
// large answer on such a session crosses 150 ms at under 1 MB/s, against
// 5 MB/s on a session still in slow start (scripts/lab/README.md,
// "2026-12-06, evening"). quic-go exposes the window but not the phase;
// the only way to learn it is its qlog events, whose congestion-state
// updates say when slow start ended. So a relay session follows them, and
// the relay can renew an idle session that has left slow start
// (tunnel.SenderState.LeftSlowStart).
//
// With a tracer set, quic-go builds an event for every packet sent and
// received (+75 % allocations and 10-25 % less throughput in
// BenchmarkTunnel on loopback). So only sessions from edges that send FEC
// are followed: those on a path long enough for FEC
// (Config.FECMinRTT), where the path bounds throughput, not the relay's
// CPU, and where a session's window is what a large answer waits on. An
// edge dials its first sessions to a relay with FEC before it knows the
// path, and stops FEC once it finds the path short; the relay then asks
// for such a session to be replaced (tunnel.NeedlessWatch),
// and the replacement, dialed without FEC, is not followed.

// slowStartWatch records whether a connection's sender has left slow
// start. It is the connection's qlogwriter.Trace.
type slowStartWatch struct {
	left atomic.Bool
	// also is the trace events go on to as well (QLOGDIR's), or nil.
	also qlogwriter.Trace
}

// AddProducer implements qlogwriter.Trace.
func (w *slowStartWatch) AddProducer() qlogwriter.Recorder {
	r := &slowStartRecorder{w: w}
	if w.also != nil {
		r.also = w.also.AddProducer()
	}
	return r
}

// LeftSlowStart reports whether the sender's slow start has ended.
func (w *slowStartWatch) LeftSlowStart() bool { return w.left.Load() }

// slowStartRecorder is what quic-go records a connection's events with.
type slowStartRecorder struct {
	w    *slowStartWatch
	also qlogwriter.Recorder
}

// RecordEvent implements qlogwriter.Recorder. The state goes to
// application_limited and back as the session idles; only congestion
// avoidance and recovery say that slow start is over.
func (r *slowStartRecorder) RecordEvent(ev qlogwriter.Event) {
	if e, ok := ev.(qlog.CongestionStateUpdated); ok &&
		(e.State == qlog.CongestionStateCongestionAvoidance || e.State == qlog.CongestionStateRecovery) {
		r.w.left.Store(true)
	}
	if r.also != nil {
		r.also.RecordEvent(ev)
	}
}

// Close implements qlogwriter.Recorder.
func (r *slowStartRecorder) Close() error {
	if r.also != nil {
		return r.also.Close()
	}
	return nil
}

type slowStartWatchKey struct{}

// watchSlowStart returns ctx carrying a new slowStartWatch, which the
// connection's tracer (connTracer) hands quic-go.
func watchSlowStart(ctx context.Context) context.Context {
	return context.WithValue(ctx, slowStartWatchKey{}, &slowStartWatch{})
}

// slowStartWatchOf returns the watch of a connection whose context
// watchSlowStart made, or nil.
func slowStartWatchOf(ctx context.Context) *slowStartWatch {
	w, _ := ctx.Value(slowStartWatchKey{}).(*slowStartWatch)
	return w
}

// connTracer is quic.Config.Tracer: QLOGDIR's qlog when it is set, and
// the connection's slowStartWatch when its context carries one.
func connTracer(ctx context.Context, isClient bool, id quic.ConnectionID) qlogwriter.Trace {
	q := qlog.DefaultConnectionTracer(ctx, isClient, id)
	w := slowStartWatchOf(ctx)
	if w == nil {
		return q
	}
	w.also = q
	return w
}
