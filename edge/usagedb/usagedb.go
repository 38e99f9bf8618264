// Package usagedb keeps usage per client, model and UTC day in a bbolt file
// in the edge's data directory. Records are summed in memory and written in
// one fsync'd transaction per second, so a crash loses at most the last
// second of usage, and a busy edge does not pay a disk sync per request.
package usagedb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"

	"github.com/strait/strait/edge/usage"
)

// FileName is the store's name inside the data directory.
const FileName = "usage.db"

var bucketDaily = []byte("daily")

// Row is the usage of one client on one model on one UTC day.
type Row struct {
	Day    string `json:"day"` // 2006-01-02
	Client string `json:"client"`
	Model  string `json:"model"`
	// Requests counts requests; Estimated counts those whose usage was
	// (partly) estimated rather than reported by the provider.
	Requests  int64       `json:"requests"`
	Estimated int64       `json:"estimated"`
	Usage     usage.Usage `json:"usage"`
	Cost      float64     `json:"cost_usd"`
	// Cached counts requests the edge answered from its response cache:
	// not in Requests, no tokens, no cost.
	Cached int64 `json:"cached,omitempty"`
}

// Record is one finished request's usage.
type Record struct {
	Time   time.Time
	Client string
	Model  string
	Usage  usage.Usage
	Cost   float64
	// Cached: answered from the edge's response cache (Usage and Cost
	// are not counted).
	Cached bool
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	db *bolt.DB
	// flushMu is held through a Flush and a Query, so a Query never sees
	// rows that left pending but are not committed yet (or both).
	flushMu sync.Mutex
	pending Pending
	stop    context.CancelFunc
	done    chan struct{}
	log     *zap.Logger

	// What went wrong since Open (Stats), and the last flush's error (Err).
	flushFailures, rowsDropped, rowsUnreadable atomic.Int64
	lastErr                                    atomic.Pointer[error]
}

// Stats counts the store's failures since it was opened.
type Stats struct {
	// FlushFailures counts flushes whose transaction failed: nothing was
	// written, the rows stay pending for the next flush.
	FlushFailures int64
	// RowsDropped counts rows the store refused (a key or value it cannot
	// hold); they were logged and dropped so that other rows are saved.
	RowsDropped int64
	// RowsUnreadable counts stored rows that did not decode; a flush
	// replaced them, a query skipped them.
	RowsUnreadable int64
}

// FlushInterval is how often pending usage is written: the most a crash
// can lose.
const FlushInterval = time.Second

// Open opens (creating) the store at path and starts the flusher. The file
// is locked: a second process opening it waits up to timeout, then fails.
// log (nil means none) receives the rows the store could not keep.
func Open(path string, timeout time.Duration, log *zap.Logger) (*DB, error) {
	if log == nil {
		log = zap.NewNop()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("usage store %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketDaily)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &DB{db: db, stop: cancel, done: make(chan struct{}), log: log.Named("usagedb")}
	go d.flushLoop(ctx)
	return d, nil
}

func (d *DB) flushLoop(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Flush(); err != nil { // the rows stay pending for the next tick
				d.log.Error("writing usage failed; retrying", zap.Error(err))
			}
		}
	}
}

// Close writes what is pending and closes the file.
func (d *DB) Close() error {
	d.stop()
	<-d.done
	ferr := d.Flush()
	if err := d.db.Close(); err != nil {
		return err
	}
	return ferr
}

// key orders rows by day, then client, then model.
func key(day, client, model string) string { return day + "\x00" + client + "\x00" + model }

// Add records r; it reaches the disk within FlushInterval.
func (d *DB) Add(r Record) { d.pending.Add(r) }

// Pending sums records in memory until they are written (the bbolt file
// here, Redis in redisstore). It is safe for concurrent use; the zero value
// is empty.
type Pending struct {
	mu   sync.Mutex
	rows map[string]*Row // by Key
}

// Add counts r in its row.
func (p *Pending) Add(r Record) {
	day := r.Time.UTC().Format("2006-01-02")
	k := key(day, r.Client, r.Model)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rows == nil {
		p.rows = map[string]*Row{}
	}
	row, ok := p.rows[k]
	if !ok {
		row = &Row{Day: day, Client: r.Client, Model: r.Model}
		p.rows[k] = row
	}
	row.Add(r)
}

// Take removes and returns the pending rows, by Key.
func (p *Pending) Take() map[string]*Row {
	p.mu.Lock()
	defer p.mu.Unlock()
	batch := p.rows
	p.rows = nil
	return batch
}

// Len is the number of pending rows.
func (p *Pending) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.rows)
}

// Requeue puts back a batch that could not be written, so nothing is lost.
func (p *Pending) Requeue(batch map[string]*Row) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rows == nil {
		p.rows = map[string]*Row{}
	}
	for k, row := range batch {
		if q, ok := p.rows[k]; ok {
			row.Merge(q)
		}
		p.rows[k] = row
	}
}

// Add counts one request's record in the row.
func (row *Row) Add(r Record) {
	if r.Cached {
		row.Cached++
		return
	}
	row.Requests++
	if r.Usage.Estimated {
		row.Estimated++
	}
	u := r.Usage
	u.Estimated = false // per row, Estimated counts requests instead
	row.Usage.Add(u)
	row.Cost += r.Cost
}

// Merge adds o's counts to the row.
func (row *Row) Merge(o *Row) {
	row.Requests += o.Requests
	row.Estimated += o.Estimated
	row.Cached += o.Cached
	row.Usage.Add(o.Usage)
	row.Cost += o.Cost
}

// Flush writes pending rows now, in one transaction. A row the store
// refuses is logged and dropped, so that one bad row (a client-controlled
// string too large for a key) cannot stop usage saving for everyone; when
// the transaction itself fails, every row stays pending and the error is
// returned (and reported by Err until a flush succeeds).
func (d *DB) Flush() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	batch := d.pending.Take()
	if len(batch) == 0 {
		return d.setErr(nil)
	}
	var refused []string
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDaily)
		for k, row := range batch {
			if err := d.put(b, k, row); err != nil {
				d.log.Error("usage row dropped: the store refused it", zap.String("day", row.Day),
					zap.String("client", row.Client), zap.Int("model_bytes", len(row.Model)), zap.Int64("requests", row.Requests),
					zap.Int64("tokens", row.Usage.Total()), zap.Float64("cost_usd", row.Cost), zap.Error(err))
				refused = append(refused, k)
			}
		}
		return nil
	})
	if err != nil { // put the batch back so nothing is lost
		d.flushFailures.Add(1)
		d.pending.Requeue(batch)
		return d.setErr(err)
	}
	d.rowsDropped.Add(int64(len(refused)))
	return d.setErr(nil)
}

// put adds row to the stored row at k.
func (d *DB) put(b *bolt.Bucket, k string, row *Row) error {
	merged := *row
	if old := b.Get([]byte(k)); old != nil {
		var prev Row
		if err := json.Unmarshal(old, &prev); err != nil {
			d.rowsUnreadable.Add(1)
			d.log.Error("stored usage row unreadable; replacing it", zap.Int("key_bytes", len(k)), zap.Error(err))
		} else {
			merged.Merge(&prev)
		}
	}
	v, err := json.Marshal(&merged)
	if err != nil {
		return err
	}
	return b.Put([]byte(k), v)
}

func (d *DB) setErr(err error) error {
	d.lastErr.Store(&err)
	return err
}

// Err is the last flush's error: nil while the store writes.
func (d *DB) Err() error {
	if p := d.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Stats returns the failure counts since Open.
func (d *DB) Stats() Stats {
	return Stats{FlushFailures: d.flushFailures.Load(), RowsDropped: d.rowsDropped.Load(), RowsUnreadable: d.rowsUnreadable.Load()}
}

// Filter selects rows: days in [From, To] (inclusive, 2006-01-02; empty
// means unbounded) and, when set, one client and one model.
type Filter struct {
	From, To      string
	Client, Model string
}

// Match reports whether r is selected.
func (f Filter) Match(r *Row) bool {
	return (f.From == "" || r.Day >= f.From) && (f.To == "" || r.Day <= f.To) &&
		(f.Client == "" || r.Client == f.Client) && (f.Model == "" || r.Model == f.Model)
}

// Query returns the matching rows, pending ones included, sorted by day,
// client and model.
func (d *DB) Query(f Filter) ([]Row, error) {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	rows := map[string]*Row{}
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDaily).Cursor()
		k, v := c.First()
		if f.From != "" {
			k, v = c.Seek([]byte(f.From))
		}
		for ; k != nil; k, v = c.Next() {
			if f.To != "" && bytes.Compare(k[:min(len(k), len(f.To))], []byte(f.To)) > 0 {
				break
			}
			var r Row
			if err := json.Unmarshal(v, &r); err != nil {
				d.rowsUnreadable.Add(1)
				d.log.Error("stored usage row unreadable; skipped", zap.Int("key_bytes", len(k)), zap.Error(err))
				continue
			}
			if f.Match(&r) {
				rows[string(k)] = &r
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.pending.Combine(rows, f), nil
}

// Key orders rows by day, then client, then model: the key of Combine's
// maps.
func Key(day, client, model string) string { return key(day, client, model) }

// Combine adds the pending rows that f selects to the stored rows (by Key)
// and returns them sorted by day, client and model. The pending rows stay.
func (pd *Pending) Combine(rows map[string]*Row, f Filter) []Row {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	for k, p := range pd.rows {
		if !f.Match(p) {
			continue
		}
		if r, ok := rows[k]; ok {
			r.Merge(p)
		} else {
			cp := *p
			rows[k] = &cp
		}
	}
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Row, len(keys))
	for i, k := range keys {
		out[i] = *rows[k]
	}
	return out
}
