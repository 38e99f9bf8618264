package edge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strait/strait/tunnel/pool"
)

// MetricsHandler serves the edge's Prometheus metrics: tunnel sessions and
// streams by relay and transport (so a fallback from QUIC to WebSocket is
// visible at a glance), plus the Go runtime.
func (e *Edge) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), sessionCollector{e.pool})
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

var (
	sessionsDesc = prometheus.NewDesc("strait_tunnel_sessions",
		"Live tunnel sessions by relay and transport.", []string{"relay", "transport"}, nil)
	streamsDesc = prometheus.NewDesc("strait_tunnel_streams",
		"Open tunnel streams by relay and transport.", []string{"relay", "transport"}, nil)
)

// sessionCollector reads the pool at scrape time, so the numbers are never
// stale and nothing has to be updated on the request path.
type sessionCollector struct{ pool *pool.Pool }

func (c sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sessionsDesc
	ch <- streamsDesc
}

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ relay, transport string }
	sessions, streams := map[key]int{}, map[key]int{}
	for _, s := range c.pool.Sessions() {
		k := key{s.Relay, s.Transport}
		sessions[k]++
		streams[k] += s.Streams
	}
	for k, n := range sessions {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), k.relay, k.transport)
		ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(streams[k]), k.relay, k.transport)
	}
}
