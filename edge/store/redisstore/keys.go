package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/strait/strait/edge/keystore"
)

// Keys is the client-key registry in Redis: one hash of name to record
// (keystore.Record: digest, never the key), a version counter bumped by
// every change, and a channel every change is published on. Edges reload
// on the message (within milliseconds) and, as the safety net for a
// message lost while an edge's connection was down, whenever the version
// they poll every ResyncInterval has moved.
type Keys struct {
	rdb    redis.UniversalClient
	prefix string
	log    *zap.Logger
	own    bool // Close closes rdb
	// ResyncInterval is how often Watch compares the version; zero: 5s.
	ResyncInterval time.Duration
}

// OpenKeys connects to the registry alone (for the CLI).
func OpenKeys(cfg Config) (*Keys, error) {
	o, err := options(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "strait:"
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Keys{rdb: redis.NewUniversalClient(o), prefix: cfg.Prefix, log: log.Named("redis"), own: true}, nil
}

// Keys is the registry on the store's connection.
func (s *Store) Keys() *Keys { return &Keys{rdb: s.rdb, prefix: s.cfg.Prefix, log: s.log} }

// Close releases the connection of a registry from OpenKeys.
func (k *Keys) Close() error {
	if k.own {
		return k.rdb.Close()
	}
	return nil
}

// The hash, version and channel share a hash tag: one Cluster slot, as
// WATCH/MULTI needs.
func (k *Keys) hash() string    { return k.prefix + "{keys}" }
func (k *Keys) version() string { return k.prefix + "{keys}:v" }
func (k *Keys) channel() string { return k.prefix + "keys" }

// adminTimeout bounds the CLI's and the reload's calls.
const adminTimeout = 5 * time.Second

// Load returns every key, oldest first.
func (k *Keys) Load() (*keystore.File, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	h, err := k.rdb.HGetAll(ctx, k.hash()).Result()
	if err != nil {
		return nil, fmt.Errorf("client keys in Redis: %w", err)
	}
	f := &keystore.File{Keys: make([]keystore.Record, 0, len(h))}
	for name, v := range h {
		var r keystore.Record
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, fmt.Errorf("client key %q in Redis: %w", name, err)
		}
		f.Keys = append(f.Keys, r)
	}
	sort.Slice(f.Keys, func(i, j int) bool {
		a, b := f.Keys[i], f.Keys[j]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.Name < b.Name
	})
	return f, nil
}

// changed bumps the version and tells the edges, in the transaction that
// made the change.
func (k *Keys) changed(ctx context.Context, p redis.Pipeliner, name string) {
	p.Incr(ctx, k.version())
	p.Publish(ctx, k.channel(), name)
}

// Create stores a new key's record; the name must be free.
func (k *Keys) Create(r keystore.Record) (string, error) {
	key, r, err := keystore.NewRecord(r)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	err = k.update(r.Name, func(tx *redis.Tx, ctx context.Context) ([]byte, error) {
		if n, err := tx.HExists(ctx, k.hash(), r.Name).Result(); err != nil {
			return nil, err
		} else if n {
			return nil, fmt.Errorf("a key named %q exists already", r.Name)
		}
		return data, nil
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Update changes the key named name.
func (k *Keys) Update(name string, change func(*keystore.Record)) error {
	return k.update(name, func(tx *redis.Tx, ctx context.Context) ([]byte, error) {
		v, err := tx.HGet(ctx, k.hash(), name).Result()
		if errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("no key named %q", name)
		}
		if err != nil {
			return nil, err
		}
		var r keystore.Record
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			return nil, err
		}
		change(&r)
		r.Name = name // the name is the field: it cannot change here
		return json.Marshal(r)
	})
}

// Remove deletes the key named name.
func (k *Keys) Remove(name string) error {
	return k.update(name, func(tx *redis.Tx, ctx context.Context) ([]byte, error) {
		if n, err := tx.HExists(ctx, k.hash(), name).Result(); err != nil {
			return nil, err
		} else if !n {
			return nil, fmt.Errorf("no key named %q", name)
		}
		return nil, nil
	})
}

// update runs an optimistic transaction on one record: next reads under
// WATCH and returns the new value (nil: delete). Two CLIs at once retry
// rather than lose a change.
func (k *Keys) update(name string, next func(*redis.Tx, context.Context) ([]byte, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	for range 10 {
		err := k.rdb.Watch(ctx, func(tx *redis.Tx) error {
			v, err := next(tx, ctx)
			if err != nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if v == nil {
					p.HDel(ctx, k.hash(), name)
				} else {
					p.HSet(ctx, k.hash(), name, v)
				}
				k.changed(ctx, p, name)
				return nil
			})
			return err
		}, k.hash())
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errors.New("client keys in Redis: too many concurrent changes; try again")
}

// Watch calls load on every published change and whenever the version
// moved since the last look (every ResyncInterval), until ctx ends.
func (k *Keys) Watch(ctx context.Context, load func()) {
	resync := k.ResyncInterval
	if resync <= 0 {
		resync = 5 * time.Second
	}
	sub := k.rdb.Subscribe(ctx, k.channel())
	defer sub.Close()
	msgs := sub.Channel()
	last := k.currentVersion(ctx)
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-msgs:
			last = k.currentVersion(ctx)
			load()
		case <-t.C:
			if v := k.currentVersion(ctx); v != last {
				last = v
				load()
			}
		}
	}
}

// currentVersion is the registry's version, or "" when Redis cannot say.
func (k *Keys) currentVersion(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	v, err := k.rdb.Get(ctx, k.version()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "?" + err.Error() // differs from any version: resync when Redis returns
	}
	return v
}
