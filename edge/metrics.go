package edge

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/tunnel/pool"
)

// MetricsHandler serves the edge's Prometheus metrics from Config.Metrics,
// or from the edge's own registry when Config.Metrics is nil or cannot be
// gathered.
func (e *Edge) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(e.gatherer, promhttp.HandlerOpts{})
}

// registerMetrics registers the edge's collectors on reg; without a
// registry from the caller, a private one (with the Go runtime) backs
// MetricsHandler.
func (e *Edge) registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		own := prometheus.NewRegistry()
		own.MustRegister(collectors.NewGoCollector())
		reg = own
	}
	e.gatherer = prometheus.DefaultGatherer
	if g, ok := reg.(prometheus.Gatherer); ok {
		e.gatherer = g
	}
	e.metrics = newEdgeMetrics()
	// sessionCollector: tunnel sessions and streams by relay and transport,
	// so a fallback from QUIC to WebSocket is visible at a glance.
	blocked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_edge_responses_blocked_on_client",
		Help: "Responses waiting for their client to take more bytes (a client that does not read stays here)."},
		func() float64 { n, _, _ := e.fwd.ClientStats(); return float64(n) })
	// One counter, by reason: write_timeout (the client took no byte for
	// client_write_timeout) or buffer_budget (blocked the longest while
	// blocked responses were over client_buffer_budget).
	cutHelp := "Responses cut because their client did not read, by reason (write_timeout, buffer_budget)."
	cutTimeout := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_edge_slow_clients_cut_total",
		Help: cutHelp, ConstLabels: prometheus.Labels{"reason": "write_timeout"}},
		func() float64 { _, n, _ := e.fwd.ClientStats(); return float64(n) })
	cutBudget := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_edge_slow_clients_cut_total",
		Help: cutHelp, ConstLabels: prometheus.Labels{"reason": "buffer_budget"}},
		func() float64 { _, _, n := e.fwd.ClientStats(); return float64(n) })
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_edge_client_buffer_bytes",
		Help: "What responses blocked on their clients hold at the edge, as client_buffer_budget charges it (received on their tunnel streams and not taken; the stream window on QUIC)."},
		func() float64 { n, _ := e.fwd.ClientBuffer(); return float64(n) })
	budget := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_edge_client_buffer_budget_bytes",
		Help: "client_buffer_budget: past it, the response blocked the longest on its client is cut."},
		func() float64 { _, n := e.fwd.ClientBuffer(); return float64(n) })
	detached := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_edge_detached_streams",
		Help: "Streamed answers going on without net/http's connection state (HTTP/1.1, taken once their header is out; see edge/detach)."},
		func() float64 {
			if g := e.streams.Load(); g != nil {
				return float64(g.Len())
			}
			return 0
		})
	cs := append(e.metrics.collectors(), sessionCollector{e.pools()}, quotaCollector{e}, blocked, cutTimeout, cutBudget, held, budget, detached)
	if e.store != nil {
		cs = append(cs, storeCollector{e.store})
	}
	if e.shared != nil {
		cs = append(cs, e.shared.Collectors()...)
	}
	if e.cache != nil {
		cs = append(cs, e.cache.results)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	sessionsDesc = prometheus.NewDesc("strait_tunnel_sessions",
		"Live tunnel sessions by relay and transport.", []string{"relay", "transport"}, nil)
	streamsDesc = prometheus.NewDesc("strait_tunnel_streams",
		"Open tunnel streams by relay and transport.", []string{"relay", "transport"}, nil)
	dialsDesc = prometheus.NewDesc("strait_tunnel_dials_total",
		"Tunnel connection attempts by relay and outcome (ok, failed).", []string{"relay", "outcome"}, nil)
	endedDesc = prometheus.NewDesc("strait_tunnel_sessions_ended_total",
		"Tunnel sessions that ended, by relay and reason (lost, goaway, probe_timeout).", []string{"relay", "reason"}, nil)
	streamFailuresDesc = prometheus.NewDesc("strait_tunnel_stream_failures_total",
		"Streams broken by the tunnel, by relay.", []string{"relay"}, nil)
	breakerDesc = prometheus.NewDesc("strait_tunnel_breaker_open",
		"1 while the relay's circuit breaker keeps it out of rotation (open or half-open).", []string{"relay"}, nil)
	scaleDesc = prometheus.NewDesc("strait_tunnel_scale_events_total",
		"Tunnel sessions added (up) and retired (down) by autoscaling, by relay and reason "+
			"(streams, stream_cap, rtt_inflation, probe_overdue; low_load, renewed: an extra session the relay renewed, not replaced).", []string{"relay", "direction", "reason"}, nil)
	rttDesc = prometheus.NewDesc("strait_tunnel_rtt_seconds",
		"Smoothed probe round trip through the relay, per session.", []string{"relay", "transport", "slot"}, nil)
)

// sessionCollector reads the pools (the relays abroad, and the domestic
// group when there is one) at scrape time, so the numbers are never stale
// and nothing has to be updated on the request path. A relay is in one
// group only, so its labels never meet twice.
type sessionCollector struct{ pools []*pool.Pool }

func (c sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{sessionsDesc, streamsDesc, dialsDesc, endedDesc, streamFailuresDesc, breakerDesc, scaleDesc, rttDesc} {
		ch <- d
	}
}

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.pools {
		collectPool(ch, p)
	}
}

func collectPool(ch chan<- prometheus.Metric, p *pool.Pool) {
	type key struct{ relay, transport string }
	sessions, streams := map[key]int{}, map[key]int{}
	for _, s := range p.Sessions() {
		k := key{s.Relay, string(s.Transport)}
		sessions[k]++
		streams[k] += s.Streams
	}
	for k, n := range sessions {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n), k.relay, k.transport)
		ch <- prometheus.MustNewConstMetric(streamsDesc, prometheus.GaugeValue, float64(streams[k]), k.relay, k.transport)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, r := range p.Relays() {
		counter(dialsDesc, r.Dials-r.DialFailures, r.Relay, "ok")
		counter(dialsDesc, r.DialFailures, r.Relay, "failed")
		counter(endedDesc, r.SessionsLost, r.Relay, "lost")
		counter(endedDesc, r.GoAways, r.Relay, "goaway")
		counter(endedDesc, r.ProbeTimeouts, r.Relay, "probe_timeout")
		counter(streamFailuresDesc, r.StreamFailures, r.Relay)
		for reason, n := range r.ScaleUps {
			counter(scaleDesc, n, r.Relay, "up", reason)
		}
		for reason, n := range r.ScaleDowns {
			counter(scaleDesc, n, r.Relay, "down", reason)
		}
		open := 0.0
		if r.Breaker != "closed" {
			open = 1
		}
		ch <- prometheus.MustNewConstMetric(breakerDesc, prometheus.GaugeValue, open, r.Relay)
	}
	for _, s := range p.Sessions() {
		if s.RTT > 0 {
			ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, s.RTT.Seconds(), s.Relay, string(s.Transport), strconv.Itoa(s.Slot))
		}
	}
}

var (
	storeFlushFailuresDesc = prometheus.NewDesc("strait_usage_store_flush_failures_total",
		"Usage store flushes that wrote nothing (the rows stay pending; /readyz fails until a flush succeeds).", nil, nil)
	storeRowsDroppedDesc = prometheus.NewDesc("strait_usage_store_rows_dropped_total",
		"Usage rows the store refused and dropped (logged), so that the other rows could be saved.", nil, nil)
)

// storeCollector reports the usage store's write failures at scrape time.
type storeCollector struct{ db *usagedb.DB }

func (s storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storeFlushFailuresDesc
	ch <- storeRowsDroppedDesc
}

func (s storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := s.db.Stats()
	ch <- prometheus.MustNewConstMetric(storeFlushFailuresDesc, prometheus.CounterValue, float64(st.FlushFailures))
	ch <- prometheus.MustNewConstMetric(storeRowsDroppedDesc, prometheus.CounterValue, float64(st.RowsDropped))
}

// storeReady fails while the usage store cannot write: usage (and so the
// quotas that count from it after a restart) would be lost.
func (e *Edge) storeReady() error {
	if e.store == nil {
		return nil
	}
	if err := e.store.Err(); err != nil {
		return fmt.Errorf("usage store cannot write: %w", err)
	}
	return nil
}
