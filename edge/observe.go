package edge

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

// edgeMetrics are the per-request series of the edge.
type edgeMetrics struct {
	requests   *prometheus.CounterVec
	ttfb       *prometheus.HistogramVec
	gap        *prometheus.HistogramVec
	duration   *prometheus.HistogramVec
	overhead   prometheus.Histogram
	tokens     *prometheus.CounterVec
	cost       *prometheus.CounterVec
	rejections *prometheus.CounterVec
	bytes      *prometheus.CounterVec
	resends    prometheus.Counter
	// guardFinds and guardOutput count the border guard's finds in
	// requests (per category and action) and in answers: counts only.
	guardFinds  *prometheus.CounterVec
	guardOutput *prometheus.CounterVec
}

var (
	latencyBuckets  = prometheus.ExponentialBucketsRange(0.005, 120, 16)
	gapBuckets      = prometheus.ExponentialBucketsRange(0.001, 60, 14)
	overheadBuckets = prometheus.ExponentialBucketsRange(0.00005, 1, 14)
)

func newEdgeMetrics() *edgeMetrics {
	return &edgeMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_requests_total",
			Help: "Client requests by API family, model, status and client key name."}, []string{"family", "model", "status", "key"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strait_time_to_first_byte_seconds",
			Help: "From the request's arrival to the first response body byte sent to the client.", Buckets: latencyBuckets}, []string{"family"}),
		gap: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strait_inter_event_gap_seconds",
			Help: "Time between consecutive response writes to the client (stream events).", Buckets: gapBuckets}, []string{"family"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "strait_request_duration_seconds",
			Help: "From the request's arrival to the end of its response.", Buckets: latencyBuckets}, []string{"family"}),
		overhead: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strait_edge_overhead_seconds",
			Help: "Edge's own time per request before it enters the tunnel (auth, body, policy); excludes tunnel and provider.", Buckets: overheadBuckets}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_tokens_total",
			Help: "Tokens by client key name and kind (input, cache_read, cache_write, output)."}, []string{"key", "kind"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_cost_usd_total",
			Help: "Spend by client key name, from the price table."}, []string{"key"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_rejections_total",
			Help: "Requests refused by the edge's policy, by reason (invalid_key, rate_limit_requests, rate_limit_tokens, ip_rate_limit, quota, model_not_allowed, ...)."}, []string{"reason"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_bytes_total",
			Help: "Body bytes from clients (in) and to clients (out)."}, []string{"direction"}),
		resends: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_tunnel_resends_total",
			Help: "Requests re-sent on another tunnel session because theirs failed before the relay dispatched them."}),
		guardFinds: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_guard_finds_total",
			Help: "Border guard finds in requests by category and the action taken (mask, redact, block, keep_home, flag); never values."}, []string{"category", "action"}),
		guardOutput: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_guard_output_words_total",
			Help: "Sensitive words the border guard found in answers (output_words), by category."}, []string{"category"}),
	}
}

func (m *edgeMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.ttfb, m.gap, m.duration, m.overhead, m.tokens, m.cost, m.rejections, m.bytes, m.resends, m.guardFinds, m.guardOutput}
}

// quotaCollector reports, at scrape time, the share of each quota that each
// key has used (settled plus in flight), for "quota nearly spent" alerts.
type quotaCollector struct{ e *Edge }

var quotaDesc = prometheus.NewDesc("strait_quota_used_ratio",
	"Share of a client key's quota or budget used in the current UTC day or month (1 = exhausted).",
	[]string{"key", "quota"}, nil)

func (q quotaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- quotaDesc }

func (q quotaCollector) Collect(ch chan<- prometheus.Metric) {
	now := q.e.policy.Now()
	day, month := quota.Day(now), quota.Month(now)
	for _, c := range q.e.keys.Load().Clients() {
		lim := c.Limits
		d, m := q.e.admitter.Used(c.Name, day), q.e.admitter.Used(c.Name, month)
		for _, x := range []struct {
			name      string
			used, lim float64
		}{
			{"daily_tokens", float64(d.Tokens), float64(lim.DailyTokens)},
			{"monthly_tokens", float64(m.Tokens), float64(lim.MonthlyTokens)},
			{"daily_budget", d.Cost, lim.DailyBudget},
			{"monthly_budget", m.Cost, lim.MonthlyBudget},
		} {
			if x.lim > 0 {
				ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, x.used/x.lim, c.Name, x.name)
			}
		}
	}
}

// finish accounts for a request once it is over, whether it was served,
// refused or broken off (it runs deferred, also while the forwarder aborts
// a broken stream with http.ErrAbortHandler).
func (c *call) finish() {
	c.lastWrites()
	c.account()
}

// lastWrites writes what the usage meter and the border guard still hold
// for the client: an unterminated last event, a guarded tail or a whole
// guarded body.
func (c *call) lastWrites() {
	c.tap.finish()
	c.guard.close()
}

// account is finish's bookkeeping, after the last writes: usage, the
// response cache, quota settlement, metrics, the log and the audit record.
func (c *call) account() {
	e := c.e
	end := time.Now()
	u, source := c.usage()
	if e.cache != nil {
		e.storeCached(c, source)
	}
	cost := e.policy.Prices.Cost(c.req.Model, u)
	if c.reservation != nil {
		c.reservation.Settle(quota.Totals{Tokens: u.Total(), Cost: cost}) // corrects the token bucket too
	}
	status := c.status
	if status == 0 {
		status = 499 // the client left before any response
	}
	// The usage store's rows, like the metrics' series, are keyed by the
	// model's label, not by the name the client sent: one key sending a new
	// name per request would otherwise grow the store without bound (the
	// cost above is the model's own).
	model := e.labels.label(c.req.Model, status)
	if e.usage != nil && c.cacheHit { // metered as cached: no tokens, no cost, no quota
		e.usage.Add(usagedb.Record{Time: c.start, Client: c.client.Name, Model: model, Cached: true})
	}
	if e.usage != nil && c.forwarded {
		e.usage.Add(usagedb.Record{Time: c.start, Client: c.client.Name, Model: model, Usage: u, Cost: cost})
	}
	var ttfb time.Duration
	if !c.tap.firstByte.IsZero() {
		ttfb = c.tap.firstByte.Sub(c.start)
	}
	if e.metrics != nil {
		c.count(e.metrics, status, model, ttfb, end, u, cost)
	}
	c.log(status, ttfb, end.Sub(c.start), u, source)
	c.auditEntry(status, ttfb, end.Sub(c.start), u, source, cost)
	c.guard.release() // last: the guarded body and counts are read above
	c.body = nil
}

// count adds the request to the metrics. It is out of finish's frame: see
// writeLog.
func (c *call) count(m *edgeMetrics, status int, model string, ttfb time.Duration, end time.Time, u usage.Usage, cost float64) {
	fam := string(c.route.Family)
	m.requests.WithLabelValues(fam, model, strconv.Itoa(status), c.client.Name).Inc()
	m.duration.WithLabelValues(fam).Observe(end.Sub(c.start).Seconds())
	if ttfb > 0 {
		m.ttfb.WithLabelValues(fam).Observe(ttfb.Seconds())
	}
	if c.forwarded {
		m.overhead.Observe(c.edgeTime().Seconds())
	}
	if c.reason != "" {
		m.rejections.WithLabelValues(c.reason).Inc()
	}
	if c.client.Name != "" && u.Total() > 0 {
		for kind, n := range map[string]int64{"input": u.Input, "cache_read": u.CacheRead, "cache_write": u.CacheWrite, "output": u.Output} {
			m.tokens.WithLabelValues(c.client.Name, kind).Add(float64(n))
		}
		m.cost.WithLabelValues(c.client.Name).Add(cost)
	}
	m.bytes.WithLabelValues("in").Add(float64(c.bodyBytes()))
	m.bytes.WithLabelValues("out").Add(float64(c.tap.bytes))
	if c.res.Attempts > 1 {
		m.resends.Add(float64(c.res.Attempts - 1))
	}
	for _, n := range c.guard.counts {
		m.guardFinds.WithLabelValues(n.Category, string(n.Action)).Add(float64(n.N))
	}
	for cat, n := range c.guard.outputCounts() {
		m.guardOutput.WithLabelValues(cat).Add(float64(n))
	}
}

// usage is what the request consumed and whether the provider said so.
// A request the relay sent upstream whose client left before any answer
// is charged its estimated input, as a stream cut before its first event
// is: the provider has its prompt (and makes a whole answer to its end).
func (c *call) usage() (u usage.Usage, source string) {
	if c.forwarded && c.res.Dispatched && c.status == 0 {
		return usage.Usage{Input: usage.EstimateTokens(c.bodyBytes()), Estimated: true}, "estimated"
	}
	if !c.forwarded || c.tap.meter == nil {
		return u, ""
	}
	u = c.tap.meter.Result(c.bodyBytes())
	if u.Estimated {
		return u, "estimated"
	}
	return u, "reported"
}

// edgeTime is the edge's own time before the request entered the tunnel.
func (c *call) edgeTime() time.Duration {
	if c.forwardAt.IsZero() {
		return time.Since(c.start)
	}
	return c.forwardAt.Sub(c.start)
}

// log writes the request's one log line. Never the key: only its name.
// The fields are built only when the line's level is enabled: at the
// default level most lines are dropped, and building them was a tenth of
// the edge's allocation per request.
func (c *call) log(status int, ttfb, d time.Duration, u usage.Usage, source string) {
	lvl, msg := zap.InfoLevel, "request"
	switch {
	case c.reason != "":
		msg = "request rejected"
	case c.res.Err != nil:
		lvl, msg = zap.WarnLevel, "request failed"
	}
	if ce := c.e.log.Check(lvl, msg); ce != nil {
		c.writeLog(ce, status, ttfb, d, u, source)
	}
}

// writeLog writes the request's line. It is apart from log because its
// frame is large (about thirty fields, 2 KiB): finish runs on the
// handler's goroutine at the end of every request, and when the line is
// not written (a level above info) that frame must not grow a kept-alive
// connection's stack, which the connection would keep through its next
// stream (see forward's sendHeader).
func (c *call) writeLog(ce *zapcore.CheckedEntry, status int, ttfb, d time.Duration, u usage.Usage, source string) {
	fields := []zap.Field{zap.String("request_id", c.id), zap.String("key", c.client.Name),
		zap.String("family", string(c.route.Family)), zap.String("method", llmapi.Truncate(c.r.Method)), zap.String("path", llmapi.Truncate(c.r.URL.Path)),
		zap.String("model", c.req.Model), zap.Int("status", status), zap.Duration("ttfb", ttfb), zap.Duration("duration", d),
		zap.Int64("tokens_in", u.Input+u.CacheRead+u.CacheWrite), zap.Int64("tokens_out", u.Output),
		zap.String("usage", source), zap.Int("attempts", c.res.Attempts), zap.Bool("dispatched", c.res.Dispatched),
		zap.Int64("bytes", c.tap.bytes), zap.String("remote", c.r.RemoteAddr)}
	if c.via.relay != "" {
		fields = append(fields, zap.String("relay", c.via.relay), zap.String("session", c.via.session))
	}
	if c.res.Hedged { // session names the first of its two streams' sessions
		fields = append(fields, zap.Bool("hedged", true))
	}
	if len(c.guard.counts) > 0 {
		fields = append(fields, c.guard.field(), zap.Bool("domestic", c.guard.home))
	}
	if c.timing != (proto.RelayTiming{}) {
		fields = append(fields, zap.Duration("relay_time", c.timing.Relay), zap.Duration("upstream_first_byte", c.timing.Upstream))
	}
	switch {
	case c.reason != "":
		fields = append(fields, zap.String("reason", c.reason), zap.String("detail", c.detail))
	case c.res.Err != nil:
		fields = append(fields, zap.Error(c.res.Err))
	}
	ce.Write(fields...)
}

func (c *call) auditEntry(status int, ttfb, d time.Duration, u usage.Usage, source string, cost float64) {
	if c.e.audit == nil {
		return
	}
	ent := &audit.Entry{Time: c.start.UTC(), RequestID: c.id, ClientIP: sourceIP(c.r), Key: c.client.Name,
		Family: string(c.route.Family), Method: llmapi.Truncate(c.r.Method), Path: llmapi.Truncate(c.r.URL.Path), Model: c.req.Model, Stream: c.req.Stream,
		Status: status, Reason: c.reason, TTFBMs: ms(ttfb), DurationMs: ms(d), Usage: u, UsageSource: source, Cost: cost,
		Attempts: c.res.Attempts, Relay: c.via.relay, Session: c.via.session, BytesIn: int64(c.bodyBytes()), BytesOut: c.tap.bytes,
		Guard: c.guard.counts, GuardOutput: c.guard.outputCounts(), Domestic: c.guard.home}
	// A request kept at home holds the values the policy keeps in the
	// country, unmasked, and its answer from the domestic model may quote
	// them: like a blocked request's, its record says what (the counts,
	// domestic, or the refusal's reason), never the text.
	if c.e.audit.Bodies() && !c.guard.home {
		ent.RequestBody, ent.ResponseBody = string(auditBody(c.body)), string(c.tap.body)
	}
	if err := c.e.audit.Write(ent); err != nil {
		c.e.log.Error("audit log write failed", zap.Error(err))
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
