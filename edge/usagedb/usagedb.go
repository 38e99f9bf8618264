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
	"time"

	bolt "go.etcd.io/bbolt"

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
}

// Record is one finished request's usage.
type Record struct {
	Time   time.Time
	Client string
	Model  string
	Usage  usage.Usage
	Cost   float64
}

// DB is an open store. It is safe for concurrent use.
type DB struct {
	db *bolt.DB
	// flushMu is held through a Flush and a Query, so a Query never sees
	// rows that left pending but are not committed yet (or both).
	flushMu sync.Mutex
	mu      sync.Mutex
	pending map[string]*Row // by key
	stop    context.CancelFunc
	done    chan struct{}
}

// FlushInterval is how often pending usage is written: the most a crash
// can lose.
const FlushInterval = time.Second

// Open opens (creating) the store at path and starts the flusher. The file
// is locked: a second process opening it waits up to timeout, then fails.
func Open(path string, timeout time.Duration) (*DB, error) {
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
	d := &DB{db: db, pending: map[string]*Row{}, stop: cancel, done: make(chan struct{})}
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
			_ = d.Flush() // a failed write keeps the rows pending for the next tick
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
func (d *DB) Add(r Record) {
	day := r.Time.UTC().Format("2006-01-02")
	k := key(day, r.Client, r.Model)
	d.mu.Lock()
	defer d.mu.Unlock()
	row, ok := d.pending[k]
	if !ok {
		row = &Row{Day: day, Client: r.Client, Model: r.Model}
		d.pending[k] = row
	}
	row.add(r)
}

func (row *Row) add(r Record) {
	row.Requests++
	if r.Usage.Estimated {
		row.Estimated++
	}
	u := r.Usage
	u.Estimated = false // per row, Estimated counts requests instead
	row.Usage.Add(u)
	row.Cost += r.Cost
}

func (row *Row) merge(o *Row) {
	row.Requests += o.Requests
	row.Estimated += o.Estimated
	row.Usage.Add(o.Usage)
	row.Cost += o.Cost
}

// Flush writes pending rows now, in one transaction.
func (d *DB) Flush() error {
	d.flushMu.Lock()
	defer d.flushMu.Unlock()
	d.mu.Lock()
	batch := d.pending
	d.pending = map[string]*Row{}
	d.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDaily)
		for k, row := range batch {
			merged := *row
			if old := b.Get([]byte(k)); old != nil {
				var prev Row
				if err := json.Unmarshal(old, &prev); err != nil {
					return fmt.Errorf("usage row %q: %w", k, err)
				}
				merged.merge(&prev)
			}
			v, err := json.Marshal(&merged)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil { // put the batch back so nothing is lost
		d.mu.Lock()
		for k, row := range batch {
			if p, ok := d.pending[k]; ok {
				row.merge(p)
			}
			d.pending[k] = row
		}
		d.mu.Unlock()
	}
	return err
}

// Filter selects rows: days in [From, To] (inclusive, 2006-01-02; empty
// means unbounded) and, when set, one client and one model.
type Filter struct {
	From, To      string
	Client, Model string
}

func (f Filter) match(r *Row) bool {
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
				return fmt.Errorf("usage row %q: %w", k, err)
			}
			if f.match(&r) {
				rows[string(k)] = &r
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	for k, p := range d.pending {
		if !f.match(p) {
			continue
		}
		if r, ok := rows[k]; ok {
			r.merge(p)
		} else {
			cp := *p
			rows[k] = &cp
		}
	}
	d.mu.Unlock()
	keys := make([]string, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]Row, len(keys))
	for i, k := range keys {
		out[i] = *rows[k]
	}
	return out, nil
}
