package usagedb

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/edge/usage"
)

func TestAddQueryPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(path, time.Second, nil)
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
	db, err = Open(path, time.Second, nil)
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
	db, err := Open(path, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.Add(Record{Time: time.Now(), Client: "a", Model: "m", Usage: usage.Usage{Output: 1}})
	deadline := time.Now().Add(3 * FlushInterval)
	for {
		n := db.pending.Len()
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

// TestBadRowDoesNotStopSaving: a row the store cannot hold (a key over
// bbolt's limit, as a 40 KB client-chosen model name made) is logged and
// dropped; the other rows of the same flush are saved, and later flushes
// work.
func TestBadRowDoesNotStopSaving(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	db, err := Open(filepath.Join(t.TempDir(), FileName), time.Second, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	db.Add(Record{Time: now, Client: "a", Model: strings.Repeat("m", bolt.MaxKeySize), Usage: usage.Usage{Output: 1}})
	db.Add(Record{Time: now, Client: "a", Model: "good", Usage: usage.Usage{Output: 2}})
	if err := db.Flush(); err != nil {
		t.Fatalf("flush failed for everyone: %v", err)
	}
	db.Add(Record{Time: now, Client: "a", Model: "good", Usage: usage.Usage{Output: 3}})
	if err := db.Flush(); err != nil || db.Err() != nil {
		t.Fatalf("second flush: %v", err)
	}
	pending := db.pending.Len()
	rows, err := db.Query(Filter{})
	if err != nil || pending != 0 || len(rows) != 1 || rows[0].Model != "good" || rows[0].Usage.Output != 5 {
		t.Fatalf("rows %+v, %d pending, %v", rows, pending, err)
	}
	if st := db.Stats(); st.RowsDropped != 1 || st.FlushFailures != 0 {
		t.Errorf("stats %+v", st)
	}
	if ent := logs.FilterMessageSnippet("usage row dropped").All(); len(ent) != 1 || ent[0].ContextMap()["model_bytes"] != int64(bolt.MaxKeySize) {
		t.Errorf("log %+v", ent)
	}
}

// TestFailingStoreReported: when the store cannot write at all, the rows
// stay pending, Err says so and the failures are counted, until a flush
// succeeds again.
func TestFailingStoreReported(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), FileName), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.stop() // no background flushes in this test
	<-db.done
	db.Add(Record{Time: time.Now(), Client: "a", Model: "m", Usage: usage.Usage{Output: 1}})
	if err := db.db.Close(); err != nil { // the file is gone from under the store
		t.Fatal(err)
	}
	if err := db.Flush(); err == nil || db.Err() == nil || db.Stats().FlushFailures != 1 {
		t.Fatalf("flush %v, Err %v, stats %+v", err, db.Err(), db.Stats())
	}
	pending := db.pending.Len()
	if pending != 1 {
		t.Fatalf("%d rows pending after a failed flush, want 1", pending)
	}
}
