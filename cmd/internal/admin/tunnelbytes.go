package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/tunnel/wstun"
)

// TunnelBytes exports the WebSocket transport's byte counts by direction
// (out, in): strait_tunnel_ws_payload_bytes_total is what yamux sends or
// receives, strait_tunnel_ws_wire_bytes_total the WebSocket message payloads
// that carry it. Their ratio is what compression leaves of the payload (1 on
// sessions without compression); WebSocket, TLS and TCP headers come on top.
func TunnelBytes(reg prometheus.Registerer, stats *wstun.Stats) {
	for _, dir := range []struct {
		name string
		get  func() (payload, wire uint64)
	}{{"out", stats.Out}, {"in", stats.In}} {
		labels := prometheus.Labels{"direction": dir.name}
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_tunnel_ws_payload_bytes_total", ConstLabels: labels,
				Help: "Bytes of yamux frames sent (out) or received (in) over WebSocket tunnel sessions, before compression."},
				func() float64 { p, _ := dir.get(); return float64(p) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_tunnel_ws_wire_bytes_total", ConstLabels: labels,
				Help: "Bytes of WebSocket message payload sent (out) or received (in) on tunnel sessions, after compression."},
				func() float64 { _, w := dir.get(); return float64(w) }),
		)
	}
}

// RefusedHandshakes exports strait_tunnel_handshakes_refused_total for one
// transport: every failed tunnel handshake, including those the transport
// no longer logs one by one (anyone can cause them).
func RefusedHandshakes(reg prometheus.Registerer, transport string, count func() uint64) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_tunnel_handshakes_refused_total",
		ConstLabels: prometheus.Labels{"transport": transport},
		Help:        "Tunnel handshakes the relay refused or that failed (certificate, ALPN, timeout), logged or not."},
		func() float64 { return float64(count()) }))
}
