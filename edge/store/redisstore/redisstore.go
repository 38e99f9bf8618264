// Package redisstore keeps the edge's shared state in Redis, so several
// edges behind DNS or a load balancer enforce one policy: rate-limit
// buckets and quota reservations (server-side scripts, one round trip per
// admission), usage per key, model and day, and the client-key registry.
//
// Redis may go away. Every call on the request path has a short deadline;
// a failure marks Redis down until a background ping finds it again, and
// meanwhile the policy decides: fail_open admits on local buckets sized to
// one edge's share and settles to Redis when it returns, fail_closed
// refuses with 503. A request already admitted never fails because of
// Redis: its settlement and usage wait in memory until Redis is back.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/ratelimit"
	"github.com/strait/strait/edge/store"
	"github.com/strait/strait/proto/redisurl"
)

// Config configures a Store.
type Config struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS.
	// Addrs, instead, lists Redis Cluster nodes, or Sentinels when
	// MasterName is set.
	URL        string
	Addrs      []string
	MasterName string
	// Username and Password override the URL's.
	Username, Password string
	// TLS, when set, is used for the connection (also with Addrs); with a
	// rediss:// URL and no TLS, the system roots are used.
	TLS *tls.Config
	// Timeout bounds each call on the request path (admission); zero
	// means 5ms. Settlements and background work allow ten times it.
	Timeout time.Duration
	// FailOpen admits on local buckets while Redis is away, each limit
	// and quota divided by Edges; otherwise requests are refused with 503.
	FailOpen bool
	// Edges is how many edges share the store, to size the local limits
	// under FailOpen; zero means 1.
	Edges int
	// Prefix starts every key; zero means "strait:".
	Prefix string
	// Now names the quota periods and usage days; nil means time.Now.
	// Rate-limit buckets run on Redis's clock.
	Now func() time.Time
	// Logger; nil means none.
	Logger *zap.Logger
}

// Store is a Redis-backed store.Admitter and store.Usage, and the source of
// a key registry (Keys). Close it when done.
type Store struct {
	cfg  Config
	rdb  redis.UniversalClient
	log  *zap.Logger
	edge string // this process's id, for its reservations
	// local decides while Redis is away (FailOpen).
	local store.Local

	up      atomic.Bool
	nudge   chan struct{} // a call failed: ping now
	pending pendingSettles
	usage   *usageWriter
	m       *metrics

	stop   context.CancelFunc
	done   chan struct{}
	reader bool // NewReader: reads only
}

// Options turns cfg's addresses into go-redis options.
func options(cfg Config) (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{Addrs: cfg.Addrs, MasterName: cfg.MasterName, TLSConfig: cfg.TLS}
	switch {
	case cfg.URL != "" && len(cfg.Addrs) > 0:
		return nil, errors.New("store.redis: give url or addrs, not both")
	case cfg.URL != "":
		u, err := redisurl.Parse(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("store.redis.url: %w", err)
		}
		o.Addrs, o.Username, o.Password, o.DB = []string{u.Addr}, u.Username, u.Password, u.DB
		if o.TLSConfig == nil {
			o.TLSConfig = u.TLSConfig
		}
	case len(cfg.Addrs) == 0:
		return nil, errors.New("store.redis: url or addrs is required")
	}
	if cfg.Username != "" {
		o.Username = cfg.Username
	}
	if cfg.Password != "" {
		o.Password = cfg.Password
	}
	// Deadlines come from the caller's context: the hot path's few
	// milliseconds, not go-redis's seconds. No retries: a retry would
	// spend the same budget twice, and the policy decides what a failure
	// means.
	o.ContextTimeoutEnabled = true
	o.MaxRetries = -1
	o.DialerRetries = 1 // a refused connection is an answer: Redis is down
	o.DialTimeout = time.Second
	o.ReadTimeout, o.WriteTimeout = time.Second, time.Second
	return o, nil
}

// New connects to Redis (without waiting for it: an edge starts while
// Redis is away, under its policy) and starts the background loop.
func New(cfg Config) (*Store, error) {
	s, err := build(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	s.up.Store(s.ping(ctx) == nil)
	if !s.up.Load() {
		s.log.Warn("Redis is not reachable at start; policy applies until it is", zap.Bool("fail_open", cfg.FailOpen))
	}
	s.heartbeat(ctx)
	go s.loop(ctx)
	return s, nil
}

// NewReader connects to Redis for reading usage (the CLI): no background
// loop, no heartbeat, nothing written.
func NewReader(cfg Config) (*Store, error) {
	s, err := build(cfg)
	if err != nil {
		return nil, err
	}
	s.stop, s.done = func() {}, make(chan struct{})
	close(s.done)
	s.up.Store(true)
	s.reader = true
	return s, nil
}

// quietClient keeps go-redis's own log lines (one per failed dial, on
// stderr) out of the edge's output: the store logs each outage once,
// through zap, and counts the failures.
var quietClient sync.Once

type noLog struct{}

func (noLog) Printf(context.Context, string, ...any) {}

func build(cfg Config) (*Store, error) {
	quietClient.Do(func() { redis.SetLogger(noLog{}) })
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Millisecond
	}
	if cfg.Edges <= 0 {
		cfg.Edges = 1
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "strait:"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	o, err := options(cfg)
	if err != nil {
		return nil, err
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	s := &Store{cfg: cfg, rdb: redis.NewUniversalClient(o), log: cfg.Logger.Named("redis"), edge: hex.EncodeToString(id[:]),
		local: store.Local{Limits: ratelimit.New(cfg.Now), Ledger: quota.NewLedger(cfg.Now)}, m: newMetrics(),
		nudge: make(chan struct{}, 1)}
	s.usage = newUsageWriter(s)
	return s, nil
}

// Close stops the background loop, writes what it can (pending usage and
// settlements, within a second) and closes the connections.
func (s *Store) Close() error {
	s.stop()
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.up.Load() && !s.reader {
		s.replay(ctx)
		if err := s.usage.flush(ctx); err != nil {
			s.log.Error("usage not written to Redis at close", zap.Error(err))
		}
		s.rdb.Del(ctx, s.key("edge:"+s.edge))
	}
	return s.rdb.Close()
}

// Client is the underlying client, for tests and the key registry.
func (s *Store) Client() redis.UniversalClient { return s.rdb }

func (s *Store) key(parts ...string) string {
	k := s.cfg.Prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// clientKeys are a client's bucket and its day's and month's quota hashes,
// in one Cluster slot.
func (s *Store) clientKeys(client, day, month string) []string {
	tag := "{" + client + "}"
	return []string{s.key("rl", tag), s.key("q", tag, day), s.key("q", tag, month)}
}

// expiries are when a day's and a month's quota hashes may go (a day after
// the period ends, so a late settlement still finds them).
func expiries(now time.Time) (day, month string) {
	now = now.UTC()
	d := time.Date(now.Year(), now.Month(), now.Day()+2, 0, 0, 0, 0, time.UTC)
	m := time.Date(now.Year(), now.Month()+1, 2, 0, 0, 0, 0, time.UTC)
	return strconv.FormatInt(d.Unix(), 10), strconv.FormatInt(m.Unix(), 10)
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Admit runs the admission script; when Redis fails or is down, the
// policy decides.
func (s *Store) Admit(ctx context.Context, client string, lim auth.Limits, tokens int64, want quota.Totals) (store.Admission, error) {
	if s.up.Load() {
		a, err := s.admitRedis(ctx, client, lim, tokens, want)
		if err == nil {
			return a, nil
		}
		if ctx.Err() != nil { // the client left: not Redis's fault
			return store.Admission{}, ctx.Err()
		}
		s.failed("admit", err)
	}
	if !s.cfg.FailOpen {
		s.m.refused.Inc()
		return store.Admission{}, store.ErrUnavailable
	}
	return s.admitLocal(client, lim, tokens, want), nil
}

func (s *Store) admitRedis(ctx context.Context, client string, lim auth.Limits, tokens int64, want quota.Totals) (store.Admission, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	now := s.cfg.Now()
	day, month := quota.Day(now), quota.Month(now)
	dayExp, monthExp := expiries(now)
	checks := quota.Checks(lim, now)
	start := time.Now()
	res, err := admitScript.Run(ctx, s.rdb, s.clientKeys(client, day, month),
		lim.RPM, lim.TPM, tokens, want.Tokens, ftoa(want.Cost), s.edge, dayExp, monthExp,
		ftoa(checks[0].Limit), ftoa(checks[1].Limit), ftoa(checks[2].Limit), ftoa(checks[3].Limit)).Slice()
	s.m.latency.Observe(time.Since(start).Seconds())
	if err != nil {
		return store.Admission{}, err
	}
	if len(res) != 9 {
		return store.Admission{}, fmt.Errorf("admission script answered %d values", len(res))
	}
	num := func(i int) int64 { n, _ := res[i].(int64); return n }
	ms := func(i int) time.Duration { return time.Duration(num(i)) * time.Millisecond }
	limit, _ := res[2].(string)
	d := ratelimit.Decision{OK: num(0) != 1, RetryAfter: ms(1), Limit: limit}
	if lim.RPM > 0 {
		d.Requests = ratelimit.Status{Limit: lim.RPM, Remaining: num(3), Reset: ms(4)}
	}
	if lim.TPM > 0 {
		d.Tokens = ratelimit.Status{Limit: lim.TPM, Remaining: num(5), Reset: ms(6)}
	}
	a := store.Admission{Rate: d}
	switch num(0) {
	case 0:
		a.Hold = &hold{s: s, c: claim{client: client, day: day, month: month, held: want, estimate: tokens, release: true}}
	case 2:
		i := num(7) - 1
		if i < 0 || i >= int64(len(checks)) {
			return store.Admission{}, fmt.Errorf("admission script named quota %d", i+1)
		}
		usedStr, _ := res[8].(string)
		used, _ := strconv.ParseFloat(usedStr, 64)
		a.Exceeded = checks[i].Exceeded(used)
	}
	return a, nil
}

// admitLocal admits on this edge's own buckets and ledger, each limit
// divided among the edges: together they stay near the shared limit. What
// these requests spend is charged to Redis when it returns.
func (s *Store) admitLocal(client string, lim auth.Limits, tokens int64, want quota.Totals) store.Admission {
	a, _ := s.local.Admit(context.Background(), client, share(lim, s.cfg.Edges), tokens, want)
	if a.Hold != nil {
		s.m.fallback.Inc()
		now := s.cfg.Now()
		a.Hold = &localHold{Hold: a.Hold, h: &hold{s: s, c: claim{client: client, day: quota.Day(now), month: quota.Month(now)}}}
	}
	return a
}

// share is one edge's part of lim: each limit divided by n, rounded up.
func share(lim auth.Limits, n int) auth.Limits {
	if n <= 1 {
		return lim
	}
	div := func(v int64) int64 { return (v + int64(n) - 1) / int64(n) }
	return auth.Limits{RPM: div(lim.RPM), TPM: div(lim.TPM), DailyTokens: div(lim.DailyTokens), MonthlyTokens: div(lim.MonthlyTokens),
		DailyBudget: lim.DailyBudget / float64(n), MonthlyBudget: lim.MonthlyBudget / float64(n)}
}

// Used sums a period's settled and reserved totals from Redis (for the
// quota metrics at scrape time); while Redis is away, this edge's local
// share.
func (s *Store) Used(client, period string) quota.Totals {
	if !s.up.Load() {
		return s.local.Used(client, period)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.Timeout)
	defer cancel()
	h, err := s.rdb.HGetAll(ctx, s.key("q", "{"+client+"}", period)).Result()
	if err != nil {
		s.failed("used", err)
		return s.local.Used(client, period)
	}
	var t quota.Totals
	for f, v := range h {
		switch {
		case f == "ut" || len(f) > 3 && f[:3] == "rt:":
			n, _ := strconv.ParseInt(v, 10, 64)
			t.Tokens += n
		case f == "uc" || len(f) > 3 && f[:3] == "rc:":
			c, _ := strconv.ParseFloat(v, 64)
			t.Cost += c
		}
	}
	return t
}

// hold is a reservation in Redis (release) or, for a request admitted
// while Redis was away, the charge to make there (no release).
type hold struct {
	s    *Store
	c    claim
	done atomic.Bool
}

// claim is what a settlement needs to know of its admission.
type claim struct {
	client     string
	day, month string
	held       quota.Totals
	estimate   int64
	release    bool
}

// Settle runs the settlement script; when Redis fails, the settlement
// waits in memory and is applied when Redis is back.
func (h *hold) Settle(actual quota.Totals) {
	if h.done.Swap(true) {
		return
	}
	h.s.settle(settlement{c: h.c, actual: actual})
}

// localHold settles a request admitted on local buckets both locally and,
// later or now, in Redis.
type localHold struct {
	store.Hold
	h *hold
}

func (l *localHold) Settle(actual quota.Totals) {
	l.Hold.Settle(actual)
	l.h.Settle(actual)
	l.h.s.m.driftTokens.Add(float64(actual.Tokens))
}

type settlement struct {
	c      claim
	actual quota.Totals
}

func (s *Store) settle(st settlement) {
	if s.up.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.Timeout)
		err := s.runSettle(ctx, st)
		cancel()
		if err == nil {
			return
		}
		s.failed("settle", err)
	}
	s.pending.add(st)
}

func (s *Store) runSettle(ctx context.Context, st settlement) error {
	h := st.c
	dayExp, monthExp := expiries(s.cfg.Now())
	release := "0"
	if h.release {
		release = "1"
	}
	return settleScript.Run(ctx, s.rdb, s.clientKeys(h.client, h.day, h.month), s.edge, h.held.Tokens, ftoa(h.held.Cost),
		st.actual.Tokens, ftoa(st.actual.Cost), st.actual.Tokens-h.estimate, dayExp, monthExp, release).Err()
}

// pendingSettles are settlements waiting for Redis, bounded so that a long
// outage cannot grow them without end (past the bound, new ones are
// dropped and counted: the replay may be applying the oldest).
type pendingSettles struct {
	mu      sync.Mutex
	list    []settlement
	dropped atomic.Int64
}

// maxPending bounds the settlements kept while Redis is away.
const maxPending = 100000

func (p *pendingSettles) add(st settlement) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) >= maxPending {
		p.dropped.Add(1)
		return
	}
	p.list = append(p.list, st)
}

// first is the oldest settlement waiting, if any.
func (p *pendingSettles) first() (settlement, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.list) == 0 {
		return settlement{}, false
	}
	return p.list[0], true
}

// drop removes the oldest settlement once it is applied. Only the replay
// removes, so the oldest is still the one it applied.
func (p *pendingSettles) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = p.list[1:]
}

func (p *pendingSettles) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.list)
}

// replay applies the settlements that waited for Redis, oldest first; each
// stays counted as pending until it is applied, and the first failure
// stops the replay until the next try.
func (s *Store) replay(ctx context.Context) {
	n := 0
	for {
		st, ok := s.pending.first()
		if !ok {
			break
		}
		if err := s.runSettle(ctx, st); err != nil {
			s.failed("replay", err)
			return
		}
		s.pending.drop()
		n++
	}
	if n > 0 {
		s.log.Info("settlements made while Redis was away are applied", zap.Int("settlements", n))
	}
}

// failed counts a failed call and asks the background loop to ping now.
// The call's own request gets the policy; whether Redis is down (and every
// request skips it) is the ping's decision, not one call's: under a burst a
// busy host lets a few calls time out while Redis is fine.
func (s *Store) failed(op string, err error) {
	s.m.errors.WithLabelValues(op).Inc()
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// down marks Redis down, once per outage in the log.
func (s *Store) down(err error) {
	if s.up.Swap(false) {
		s.log.Error("Redis does not answer; policy applies until it does", zap.Bool("fail_open", s.cfg.FailOpen), zap.Error(err))
	}
}

// ping has a generous deadline: its failure is conclusive.
func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(100*s.cfg.Timeout, time.Second))
	defer cancel()
	return s.rdb.Ping(ctx).Err()
}

// probeInterval is how often the loop pings Redis (and so how soon after
// Redis returns the edges use it again); flushInterval is how often usage
// is written.
const (
	probeInterval = 250 * time.Millisecond
	flushInterval = time.Second
	beatInterval  = 10 * time.Second
	// edgeTTL: an edge whose heartbeat is this old is dead; its
	// reservations are released.
	edgeTTL = 30 * time.Second
)

func (s *Store) loop(ctx context.Context) {
	defer close(s.done)
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	var lastFlush, lastBeat time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-probe.C:
		case <-s.nudge:
		}
		// Ping also while up: an idle edge notices an outage (readiness,
		// metric) before a request has to.
		if err := s.ping(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.m.errors.WithLabelValues("ping").Inc()
			s.down(err)
			continue
		}
		if !s.up.Swap(true) {
			s.log.Info("Redis answers again; shared policy resumes")
		}
		if s.pending.len() > 0 {
			s.replay(ctx)
		}
		if time.Since(lastFlush) >= flushInterval {
			lastFlush = time.Now()
			if err := s.usage.flush(ctx); err != nil {
				s.failed("usage", err)
			}
		}
		if time.Since(lastBeat) >= beatInterval {
			lastBeat = time.Now()
			s.heartbeat(ctx)
		}
	}
}

// heartbeat says this edge is alive (its reservations are live) and
// releases the reservations of edges that are not.
func (s *Store) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := s.rdb.Set(ctx, s.key("edge:"+s.edge), "1", edgeTTL).Err(); err != nil {
		return
	}
	s.rdb.SAdd(ctx, s.key("edges"), s.edge)
	s.reap(ctx)
}

// Ready fails while Redis is down: the edge's load balancer should prefer
// an edge that reaches it.
func (s *Store) Ready(context.Context) error {
	if !s.up.Load() {
		return errors.New("the shared store (Redis) is not reachable")
	}
	return nil
}

// Collectors are the store's Prometheus metrics.
func (s *Store) Collectors() []prometheus.Collector {
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_store_redis_up",
		Help: "1 while the edge reaches Redis (the shared policy store)."}, func() float64 {
		if s.up.Load() {
			return 1
		}
		return 0
	})
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strait_store_pending_settlements",
		Help: "Settlements of finished requests waiting for Redis to return."}, func() float64 { return float64(s.pending.len()) })
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "strait_store_dropped_settlements_total",
		Help: "Settlements dropped because too many waited for Redis (100000): their usage never reaches the shared quotas."},
		func() float64 { return float64(s.pending.dropped.Load()) })
	return append(s.m.collectors(), up, pending, dropped)
}
