package relay

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/relay/dispatch"
)

// metrics are the relay's own Prometheus series. Other relay layers (the
// upstream key pools, retries) register theirs on the same Config.Metrics.
type metrics struct {
	requests  *prometheus.CounterVec
	firstByte *prometheus.HistogramVec
	overhead  prometheus.Histogram
	duration  *prometheus.HistogramVec
	bytes     *prometheus.CounterVec
	streams   prometheus.Gauge
	renewed   prometheus.Counter
}

// latencyBuckets span 5 ms to 2 min: model first tokens and whole streams.
var latencyBuckets = prometheus.ExponentialBucketsRange(0.005, 120, 16)

// overheadBuckets span 50 µs to 1 s: Strait's own work should be tiny.
var overheadBuckets = prometheus.ExponentialBucketsRange(0.00005, 1, 14)

func newMetrics(reg prometheus.Registerer, sessions *sessionSet) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_relay_requests_total",
			Help: "Exchanges served by the relay, by API family, provider, provider status (or how it ended without one)."},
			[]string{"family", "provider", "status"}),
		firstByte: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strait_relay_upstream_first_byte_seconds",
			Help: "Time from the upstream call to the provider's response header.", Buckets: latencyBuckets},
			[]string{"provider"}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strait_relay_overhead_seconds",
			Help: "Relay's own time per exchange: stream accept to upstream call (reading, routing, key choice).", Buckets: overheadBuckets}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strait_relay_duration_seconds",
			Help: "Whole exchange on the relay, stream accept to end of body.", Buckets: latencyBuckets}, []string{"provider"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_relay_bytes_total",
			Help: "Body bytes to (up) and from (down) the providers."}, []string{"direction"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strait_relay_streams",
			Help: "Tunnel streams being served."}),
		renewed: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_relay_sessions_renewed_total",
			Help: "Idle tunnel sessions the relay asked their edge to replace, since their congestion window had moved."}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.firstByte, m.overhead, m.duration, m.bytes, m.streams, m.renewed,
		relaySessionCollector{sessions}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe records one finished exchange.
func (m *metrics) observe(s dispatch.Stats) {
	status := s.End.String()
	if s.Status != 0 {
		status = strconv.Itoa(s.Status)
		m.firstByte.WithLabelValues(s.Provider).Observe(s.Timing.Upstream.Seconds())
		m.overhead.Observe(s.Timing.Relay.Seconds())
	}
	m.requests.WithLabelValues(s.Family, s.Provider, status).Inc()
	m.duration.WithLabelValues(s.Provider).Observe(s.Duration.Seconds())
	m.bytes.WithLabelValues("up").Add(float64(s.BytesUp))
	m.bytes.WithLabelValues("down").Add(float64(s.BytesDown))
}

var relaySessionsDesc = prometheus.NewDesc("strait_relay_tunnel_sessions",
	"Tunnel sessions from edges, by transport.", []string{"transport"}, nil)

// relaySessionCollector counts live sessions at scrape time.
type relaySessionCollector struct{ set *sessionSet }

func (c relaySessionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- relaySessionsDesc }

func (c relaySessionCollector) Collect(ch chan<- prometheus.Metric) {
	for transport, n := range c.set.byTransport() {
		ch <- prometheus.MustNewConstMetric(relaySessionsDesc, prometheus.GaugeValue, float64(n), transport)
	}
}

// byTransport counts live sessions per transport.
func (s *sessionSet) byTransport() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for sess := range s.m {
		select {
		case <-sess.Done():
		default:
			out[string(sess.Info().Transport)]++
		}
	}
	return out
}
