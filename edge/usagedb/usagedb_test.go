package usagedb

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/strait/strait/edge/usage"
)

func TestAddQueryPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 11, 22, 23, 59, 0, 0, time.UTC)
	day2 := day1.Add(2 * time.Minute)
	db.Add(Record{Time: day1, Client: "a", Model: "m", Usage: usage.Usage{Input: 10, Output: 5}, Cost: 0.5})
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Add(Record{Time: day1, Client: "a", Model: "m", Usage: usage.Usage{Input: 1, Output: 1, Estimated: true}, Cost: 0.25})
	db.Add(Record{Time: day2, Client: "a", Model: "m", Usage: usage.Usage{Output: 7}})
	db.Add(Record{Time: day2, Client: "b", Model: "m", Usage: usage.Usage{Output: 3}})
	rows, err := db.Query(Filter{Client: "a"}) // one row flushed and merged with pending
	if err != nil {
		t.Fatal(err)
	}
	want := Row{Day: "2026-11-22", Client: "a", Model: "m", Requests: 2, Estimated: 1,
		Usage: usage.Usage{Input: 11, Output: 6}, Cost: 0.75}
	if len(rows) != 2 || rows[0] != want || rows[1].Day != "2026-11-23" || rows[1].Usage.Output != 7 {
		t.Fatalf("rows %+v", rows)
	}
	if err := db.Close(); err != nil { // writes what is pending
		t.Fatal(err)
	}
	db, err = Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err = db.Query(Filter{From: "2026-11-23", To: "2026-11-23"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Client != "a" || rows[1].Client != "b" {
		t.Fatalf("after reopen %+v", rows)
	}
	rows, _ = db.Query(Filter{To: "2026-11-22"})
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("To filter %+v", rows)
	}
}

// TestFlushesWithinASecond: a record reaches the file without Close, so a
// crash loses at most FlushInterval of usage.
func TestFlushesWithinASecond(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Add(Record{Time: time.Now(), Client: "a", Model: "m", Usage: usage.Usage{Output: 1}})
	deadline := time.Now().Add(3 * FlushInterval)
	for {
		db.mu.Lock()
		n := len(db.pending)
		db.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending usage not flushed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, _ := db.Query(Filter{})
	if len(rows) != 1 {
		t.Fatalf("rows %+v", rows)
	}
}
