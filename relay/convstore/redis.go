package convstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strait/strait/proto/redisurl"
)

// RedisConfig configures a Redis conversation store.
type RedisConfig struct {
	// URL is redis://[user:password@]host:port[/db], or rediss:// for TLS.
	URL string
	// Prefix starts every key; empty means "strait:conv:". Deployments that
	// share one Redis keep their conversations apart by it.
	Prefix string
	// TTL is how long a record lives; zero means DefaultTTL.
	TTL time.Duration
	// MaxRecordBytes caps one record; zero means DefaultMaxRecordBytes.
	// The store's total size is Redis's own budget (maxmemory and its
	// eviction policy): every record carries its TTL, so volatile-ttl or
	// volatile-lru drop conversations first.
	MaxRecordBytes int64
	// Timeout bounds each call; zero means 2s.
	Timeout time.Duration
}

// DefaultMaxRecordBytes is RedisConfig.MaxRecordBytes's default.
const DefaultMaxRecordBytes = 64 << 20

// Redis keeps conversations in Redis: one string per record, with its TTL
// as Redis's own expiry, so every relay that shares the server sees the
// same records and nothing needs sweeping.
type Redis struct {
	rdb     *redis.Client
	prefix  string
	ttl     time.Duration
	max     int64
	timeout time.Duration
}

var _ Backend = (*Redis)(nil)

// OpenRedis connects to the Redis at cfg.URL and checks that it answers.
func OpenRedis(cfg RedisConfig) (*Redis, error) {
	opts, err := redisurl.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("convstore: redis url: %w", err)
	}
	r := &Redis{rdb: redis.NewClient(opts), prefix: cfg.Prefix, ttl: cfg.TTL, max: cfg.MaxRecordBytes, timeout: cfg.Timeout}
	if r.prefix == "" {
		r.prefix = "strait:conv:"
	}
	if r.ttl <= 0 {
		r.ttl = DefaultTTL
	}
	if r.max <= 0 {
		r.max = DefaultMaxRecordBytes
	}
	if r.timeout <= 0 {
		r.timeout = 2 * time.Second
	}
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		r.rdb.Close()
		return nil, fmt.Errorf("convstore: redis at %s: %w", opts.Addr, err)
	}
	return r, nil
}

func (r *Redis) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// Put stores value under id for the store's TTL.
func (r *Redis) Put(id string, value []byte) error {
	if int64(len(value)) > r.max {
		return ErrTooLarge
	}
	ctx, cancel := r.ctx()
	defer cancel()
	if err := r.rdb.Set(ctx, r.prefix+id, value, r.ttl).Err(); err != nil {
		return fmt.Errorf("convstore: redis: %w", err)
	}
	return nil
}

// Get returns the value stored under id, or ErrNotFound.
func (r *Redis) Get(id string) ([]byte, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	v, err := r.rdb.Get(ctx, r.prefix+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("convstore: redis: %w", err)
	}
	return v, nil
}

// Delete removes id; false when it was not there (or had expired).
func (r *Redis) Delete(id string) (bool, error) {
	ctx, cancel := r.ctx()
	defer cancel()
	n, err := r.rdb.Del(ctx, r.prefix+id).Result()
	if err != nil {
		return false, fmt.Errorf("convstore: redis: %w", err)
	}
	return n > 0, nil
}

// Close closes the connections.
func (r *Redis) Close() error { return r.rdb.Close() }
