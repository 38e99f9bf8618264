package redisstore

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strait/strait/edge/usagedb"
)

// Usage rows live in one hash per UTC day (u:DAY), a field per client,
// model and counter ("client\x00model\x00input"), so a day's report is one
// HGETALL, and every edge adds with HINCRBY, which needs no coordination.
// The set udays lists the days that have rows.

// usageWriter sums records in memory and writes them once a second, as
// usagedb does: a busy edge makes one pipeline per second, not one write
// per request, and a Redis outage only delays the rows.
type usageWriter struct {
	s       *Store
	flushMu sync.Mutex // one flush at a time; Query waits for it
	pending usagedb.Pending
}

func newUsageWriter(s *Store) *usageWriter { return &usageWriter{s: s} }

// counters name a row's integer fields.
var counters = []string{"requests", "estimated", "input", "cache_read", "cache_write", "output", "reasoning", "cached"}

func rowCounters(r *usagedb.Row) []int64 {
	u := r.Usage
	return []int64{r.Requests, r.Estimated, u.Input, u.CacheRead, u.CacheWrite, u.Output, u.Reasoning, r.Cached}
}

func setCounter(r *usagedb.Row, name string, v int64) {
	u := &r.Usage
	for i, p := range []*int64{&r.Requests, &r.Estimated, &u.Input, &u.CacheRead, &u.CacheWrite, &u.Output, &u.Reasoning, &r.Cached} {
		if counters[i] == name {
			*p += v
		}
	}
}

// Add records one finished request; it reaches Redis within a second of
// Redis being reachable.
func (s *Store) Add(r usagedb.Record) { s.usage.pending.Add(r) }

// flush writes the pending rows in one pipeline; on failure they stay
// pending.
func (w *usageWriter) flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	batch := w.pending.Take()
	if len(batch) == 0 {
		return nil
	}
	s := w.s
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		days := map[string]bool{}
		for _, row := range batch {
			h := s.key("u", row.Day)
			f := row.Client + "\x00" + row.Model + "\x00"
			for i, v := range rowCounters(row) {
				if v != 0 {
					p.HIncrBy(ctx, h, f+counters[i], v)
				}
			}
			if row.Cost != 0 {
				p.HIncrByFloat(ctx, h, f+"cost", row.Cost)
			}
			days[row.Day] = true
		}
		for d := range days {
			p.SAdd(ctx, s.key("udays"), d)
		}
		return nil
	})
	if err != nil {
		// A pipeline that failed part-way may have applied some rows;
		// putting all back may count those twice, losing them all would
		// count them never. Redis fails whole connections, not single
		// commands, so a partial write is the rare case.
		w.pending.Requeue(batch)
	}
	return err
}

// Query reads the matching days' rows from Redis and adds the rows not
// written yet.
func (s *Store) Query(f usagedb.Filter) ([]usagedb.Row, error) {
	w := s.usage
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	days, err := s.rdb.SMembers(ctx, s.key("udays")).Result()
	if err != nil {
		return nil, err
	}
	rows := map[string]*usagedb.Row{}
	for _, day := range days {
		if (f.From != "" && day < f.From) || (f.To != "" && day > f.To) {
			continue
		}
		h, err := s.rdb.HGetAll(ctx, s.key("u", day)).Result()
		if err != nil {
			return nil, err
		}
		for field, v := range h {
			parts := strings.Split(field, "\x00")
			if len(parts) != 3 {
				continue
			}
			k := usagedb.Key(day, parts[0], parts[1])
			row, ok := rows[k]
			if !ok {
				row = &usagedb.Row{Day: day, Client: parts[0], Model: parts[1]}
				if !f.Match(row) {
					continue
				}
				rows[k] = row
			}
			if parts[2] == "cost" {
				c, _ := strconv.ParseFloat(v, 64)
				row.Cost += c
			} else {
				n, _ := strconv.ParseInt(v, 10, 64)
				setCounter(row, parts[2], n)
			}
		}
	}
	return w.pending.Combine(rows, f), nil
}

// Err is nil while Redis is reachable: usage is written.
func (s *Store) Err() error { return s.Ready(context.Background()) }
