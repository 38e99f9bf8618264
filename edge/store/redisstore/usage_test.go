package redisstore

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/scripts/redistest"
)

var traffic = []usagedb.Record{
	{Client: "a", Model: "gpt-4o", Usage: usage.Usage{Input: 100, Output: 20, Reasoning: 5}, Cost: 0.001},
	{Client: "a", Model: "gpt-4o", Usage: usage.Usage{Input: 50, CacheRead: 30, Output: 10, Estimated: true}, Cost: 0.0005},
	{Client: "b", Model: "claude", Usage: usage.Usage{Input: 7, CacheWrite: 3, Output: 1}, Cost: 0.25},
	{Client: "b", Model: "claude", Cached: true},
}

// TestUsageMatchesBbolt: the same traffic on one edge gives the same
// report from the bbolt file and from Redis, before and after the rows
// are written, and after a restart of the edge.
func TestUsageMatchesBbolt(t *testing.T) {
	srv := redistest.Start(t)
	db, err := usagedb.Open(filepath.Join(t.TempDir(), usagedb.FileName), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := edges(t, srv, 1, Config{})[0]
	days := []time.Time{time.Date(2026, 12, 4, 23, 59, 0, 0, time.UTC), time.Date(2026, 12, 5, 0, 1, 0, 0, time.UTC)}
	for _, day := range days {
		for _, r := range traffic {
			r.Time = day
			db.Add(r)
			s.Add(r)
		}
	}
	filters := []usagedb.Filter{{}, {From: "2026-12-05"}, {To: "2026-12-04", Client: "a"}, {Model: "claude"}}
	compare := func(when string, s *Store) {
		t.Helper()
		for _, f := range filters {
			want, err := db.Query(f)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Query(f)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, filter %+v:\nredis %+v\nbbolt %+v", when, f, got, want)
			}
		}
	}
	compare("pending", s)
	if err := s.usage.flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	compare("written", s)
	s.Close()
	restarted := edges(t, srv, 1, Config{})[0]
	compare("after a restart", restarted)
}

// TestUsageFromEveryEdge: rows from two edges add up in one report.
func TestUsageFromEveryEdge(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 2, Config{})
	now := time.Now()
	for _, e := range es {
		e.Add(usagedb.Record{Time: now, Client: "a", Model: "m", Usage: usage.Usage{Input: 10, Output: 1}, Cost: 0.5})
		if err := e.usage.flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := es[0].Query(usagedb.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Requests != 2 || rows[0].Usage.Input != 20 || rows[0].Cost != 1 {
		t.Fatalf("rows %+v; want one row of 2 requests, 20 input tokens, $1", rows)
	}
}
