package keystore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/edge/auth"
)

func TestCreateStoresOnlyTheHash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", FileName)
	key, err := Create(path, Record{Name: "alice", Models: []string{"gpt-*"}, Limits: auth.Limits{RPM: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, KeyPrefix) || len(key) != len(KeyPrefix)+40 {
		t.Fatalf("key %q", key)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), key) || !strings.Contains(string(data), auth.DigestOf(key).String()) {
		t.Fatalf("keys file must hold the digest, not the key:\n%s", data)
	}
	if _, err := Create(path, Record{Name: "alice"}); err == nil {
		t.Fatal("a second key with the same name was created")
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := f.Entries()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.NewKeySet(entries)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := keys.Lookup(key)
	if !ok || c.Name != "alice" || c.Limits.RPM != 5 || !c.Allows("gpt-4o") || c.Allows("claude-x") {
		t.Fatalf("lookup %+v %v", c, ok)
	}
	if err := Update(path, "alice", func(r *Record) { r.Disabled = true }); err != nil {
		t.Fatal(err)
	}
	f, _ = Load(path)
	if !f.Keys[0].Disabled || f.Keys[0].Client().Usable(time.Now()) != auth.ErrDisabled {
		t.Fatalf("not disabled: %+v", f.Keys[0])
	}
	if err := Remove(path, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(path, "alice"); err == nil {
		t.Fatal("removing a missing key succeeded")
	}
}

// TestConcurrentCreates: the file lock keeps every key of parallel CLI
// calls.
func TestConcurrentCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := Create(path, Record{Name: "k" + string(rune('a'+i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	f, err := Load(path)
	if err != nil || len(f.Keys) != 8 {
		t.Fatalf("%d keys, %v", len(f.Keys), err)
	}
}

func TestWatchSeesReplacement(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	ctx, cancel := context.WithCancel(context.Background())
	changed := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() { defer close(done); Watch(ctx, path, 10*time.Millisecond, func() { changed <- struct{}{} }) }()
	defer func() { cancel(); <-done }()
	// Watch takes its first look when its goroutine runs, which may be after
	// a first write: keep writing until it reports a change.
	deadline := time.After(5 * time.Second)
	for i := 0; ; i++ {
		if _, err := Create(path, Record{Name: fmt.Sprint("k", i)}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
			return
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("Watch never reported a change of the keys file")
		}
	}
}

// TestWriteSyncsDirectory: a write of the keys file flushes the directory
// after the rename, so the new file's entry is on disk when Create
// returns the key, and a failed flush is an error, not a key whose record
// a crash may take. (Whether the entry survives a power cut is not
// testable here; that the real syncDir runs is, on the first Create.)
func TestWriteSyncsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, FileName)
	if _, err := Create(path, Record{Name: "real"}); err != nil { // the real syncDir
		t.Fatal(err)
	}
	real := syncDir
	t.Cleanup(func() { syncDir = real })
	var synced []string
	syncDir = func(d string) error {
		f, err := Load(path)
		if err != nil || f.find("alice") < 0 {
			t.Errorf("directory synced before the new file is in place: %v", err)
		}
		synced = append(synced, d)
		return real(d)
	}
	if _, err := Create(path, Record{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0] != dir {
		t.Fatalf("directories synced: %q, want [%q]", synced, dir)
	}
	syncDir = func(string) error { return errors.New("EIO") }
	if err := Remove(path, "alice"); err == nil || !strings.Contains(err.Error(), "EIO") {
		t.Fatalf("a failed directory sync: %v", err)
	}
}
