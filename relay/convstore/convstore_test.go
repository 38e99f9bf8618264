package convstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string, ttl time.Duration, budget int64, clock *time.Time) *Store {
	t.Helper()
	s, err := Open(path, ttl, budget)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return *clock }
	return s
}

// TestStore: records come back until their TTL, a delete is a delete, the
// oldest records make room when the budget is full, a record over the
// whole budget is refused, and the size survives a reopen.
func TestStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	clock := time.Unix(1_750_000_000, 0)
	s := open(t, path, time.Hour, 100, &clock)
	val := bytes.Repeat([]byte("x"), 30) // 38 bytes stored with the expiry
	for _, id := range []string{"a", "b"} {
		if err := s.Put(id, val); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Minute)
	}
	if v, err := s.Get("a"); err != nil || !bytes.Equal(v, val) {
		t.Fatalf("get a: %q %v", v, err)
	}
	if err := s.Put("c", val); err != nil { // 3×38 > 100: a, the oldest, goes
		t.Fatal(err)
	}
	if _, err := s.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatal("a survived the budget")
	}
	if _, err := s.Get("b"); err != nil {
		t.Fatal("b evicted too")
	}
	if s.Size() != 76 {
		t.Fatalf("size %d", s.Size())
	}
	if ok, err := s.Delete("b"); !ok || err != nil {
		t.Fatalf("delete b: %v %v", ok, err)
	}
	if ok, _ := s.Delete("b"); ok {
		t.Fatal("deleted twice")
	}
	if err := s.Put("big", bytes.Repeat([]byte("x"), 100)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over budget: %v", err)
	}
	clock = clock.Add(2 * time.Hour)
	if _, err := s.Get("c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("c outlived its TTL")
	}
	if err := s.Put("d", val); err != nil { // sweeps the expired c
		t.Fatal(err)
	}
	if s.Size() != 38 {
		t.Fatalf("size after sweep %d", s.Size())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, time.Hour, 100, &clock)
	defer s.Close()
	if _, err := s.Get("d"); err != nil || s.Size() != 38 {
		t.Fatalf("after reopen: size %d", s.Size())
	}
}

// TestSizeAfterFailedCommit: when bbolt cannot commit a write (here its
// file descriptor cannot write, as on a disk gone read-only), nothing
// changed on disk, so the size count must not change either; a count
// that drifted would evict live records early, or let the file outgrow
// its budget.
func TestSizeAfterFailedCommit(t *testing.T) {
	val := bytes.Repeat([]byte("x"), 30)
	for _, tc := range []struct {
		name  string
		write func(s *Store) error
	}{
		{"put new", func(s *Store) error { return s.Put("b", val) }},
		{"put over", func(s *Store) error { return s.Put("a", append(val, val...)) }},
		{"delete", func(s *Store) error { _, err := s.Delete("a"); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.db")
			clock := time.Unix(1_750_000_000, 0)
			s := open(t, path, time.Hour, 1000, &clock)
			if err := s.Put("a", val); err != nil {
				t.Fatal(err)
			}
			want := s.Size()
			if err := s.db.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(path, 0o600, &bolt.Options{OpenFile: func(name string, _ int, _ os.FileMode) (*os.File, error) {
				return os.Open(name) // read-only: every commit fails
			}})
			if err != nil {
				t.Fatal(err)
			}
			s.db = db
			defer s.Close()
			if err := tc.write(s); err == nil {
				t.Fatal("the write committed on a read-only file")
			}
			if got := s.Size(); got != want {
				t.Errorf("size %d after a failed commit; want %d", got, want)
			}
		})
	}
}
