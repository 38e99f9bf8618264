package redisstore

import (
	"context"
	"encoding/json"
	"time"

	"github.com/strait/strait/edge/cache"
)

// Cached responses live under c:KEY (JSON of cache.Entry) with Redis's own
// expiry, so every edge answers from what any edge recorded. They are
// looked up with the hot path's deadline; a slow or absent Redis is a miss.

// GetCached returns the response cached under key by any edge.
func (s *Store) GetCached(ctx context.Context, key string) (*cache.Entry, bool) {
	if !s.up.Load() {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	b, err := s.rdb.Get(ctx, s.key("c", key)).Bytes()
	if err != nil {
		return nil, false // redis.Nil is the common miss; errors count as misses too
	}
	var e cache.Entry
	if json.Unmarshal(b, &e) != nil {
		return nil, false
	}
	return &e, true
}

// PutCached keeps e for every edge until it expires. It runs after the
// response, off the request's path.
func (s *Store) PutCached(key string, e *cache.Entry) {
	ttl := time.Until(e.Expires)
	if !s.up.Load() || ttl <= 0 {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.Timeout)
	defer cancel()
	if err := s.rdb.Set(ctx, s.key("c", key), b, ttl).Err(); err != nil {
		s.m.errors.WithLabelValues("cache").Inc()
	}
}
