package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/relay/upstream"
)

// How a stream ended, as logged and counted.
const (
	endCompleted     = "completed"
	endClientGone    = "client_gone"
	endUpstreamError = "upstream_error"
	endTimeout       = "timeout"
)

// Metrics counts upstream attempts and stream endings and exposes key
// states. A nil *Metrics counts nothing.
type Metrics struct {
	attempts *prometheus.CounterVec
	retries  *prometheus.CounterVec
	ended    *prometheus.CounterVec
}

// NewMetrics registers the relay's upstream metrics on reg; keys reports
// the current key states at each scrape (it follows config reloads).
func NewMetrics(reg prometheus.Registerer, keys func() []upstream.KeyStatus) (*Metrics, error) {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_relay_upstream_attempts_total",
			Help: "Upstream attempts by provider and result: delivered, or why the attempt failed (rate_limited, key_rejected, status_5xx, connection, timeout).",
		}, []string{"provider", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_relay_upstream_unavailable_total",
			Help: "Requests that found no usable key for a provider within the retry budget.",
		}, []string{"provider", "cause"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_relay_streams_ended_total",
			Help: "Dispatched requests by how they ended: completed, client_gone, upstream_error, timeout.",
		}, []string{"reason"}),
	}
	for _, c := range []prometheus.Collector{m.attempts, m.retries, m.ended, keyCollector{keys}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) attempt(provider, result string) {
	if m != nil {
		m.attempts.WithLabelValues(provider, result).Inc()
	}
}

func (m *Metrics) retry(provider, cause string) {
	if m != nil {
		m.retries.WithLabelValues(provider, cause).Inc()
	}
}

// ended records how a dispatched exchange ended.
func (x *exchange) ended(reason string) {
	if reason != endCompleted {
		x.log.Info("stream ended", zap.String("ended", reason))
	}
	if x.m != nil && !x.sub {
		x.m.ended.WithLabelValues(reason).Inc()
	}
}

var keyStateDesc = prometheus.NewDesc("strait_relay_upstream_key_state",
	"1 for the state each provider key is in (healthy, cooling, disabled, half_open); keys by fingerprint.",
	[]string{"provider", "key", "state"}, nil)

// keyCollector reads key states at scrape time.
type keyCollector struct{ keys func() []upstream.KeyStatus }

func (keyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyStateDesc }

func (c keyCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range c.keys() {
		for _, s := range upstream.KeyStates {
			v := 0.0
			if s == k.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(keyStateDesc, prometheus.GaugeValue, v, k.Provider, k.Fingerprint, s.String())
		}
	}
}
