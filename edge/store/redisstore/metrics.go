package redisstore

import (
	"context"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

type metrics struct {
	errors      *prometheus.CounterVec
	refused     prometheus.Counter
	fallback    prometheus.Counter
	driftTokens prometheus.Counter
	latency     prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_store_redis_errors_total",
			Help: "Redis calls that failed or timed out, by operation (admit, settle, replay, usage, used, keys)."}, []string{"op"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_store_unavailable_refusals_total",
			Help: "Requests refused with 503 because Redis was away (fail_closed)."}),
		fallback: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_store_local_admissions_total",
			Help: "Requests admitted on this edge's local buckets while Redis was away (fail_open): the drift in requests."}),
		driftTokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "strait_store_local_tokens_total",
			Help: "Tokens of requests admitted while Redis was away (fail_open), charged to Redis when it returns."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strait_store_admit_seconds",
			Help: "Round trip of the admission script to Redis.", Buckets: prometheus.ExponentialBucketsRange(0.00005, 0.1, 12)}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.errors, m.refused, m.fallback, m.driftTokens, m.latency}
}

// reap releases the reservations of edges whose heartbeat expired (they
// died with requests in flight), so those holds do not count against
// quotas until the period ends.
func (s *Store) reap(ctx context.Context) {
	ids, err := s.rdb.SMembers(ctx, s.key("edges")).Result()
	if err != nil {
		return
	}
	var dead []string
	for _, id := range ids {
		if n, err := s.rdb.Exists(ctx, s.key("edge:"+id)).Result(); err == nil && n == 0 {
			dead = append(dead, id)
		}
	}
	if len(dead) == 0 {
		return
	}
	// SCAN walks one node: on a Cluster, walk every master.
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, s.key("q", "*"), 1000).Iterator()
		for iter.Next(ctx) {
			for _, id := range dead {
				c.HDel(ctx, iter.Val(), "rt:"+id, "rc:"+id)
			}
		}
		return iter.Err()
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default: // a Sentinel-managed failover client is a *redis.Client too
		return
	}
	if err != nil {
		return
	}
	s.rdb.SRem(ctx, s.key("edges"), dead)
	s.log.Info("released the reservations of edges that stopped without settling: " + strings.Join(dead, ", "))
}
