package redisstore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/scripts/redistest"
)

// TestKeysReachEveryEdge: create, disable and remove through one
// registry reach two watching edges within a second each, by pub/sub (the
// resync is set far beyond the test so it cannot be what delivers).
func TestKeysReachEveryEdge(t *testing.T) {
	srv := redistest.Start(t)
	cli, err := OpenKeys(Config{URL: srv.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	es := edges(t, srv, 2, Config{})
	type view struct {
		mu   sync.Mutex
		keys *auth.Keys
		ch   chan struct{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	views := make([]*view, len(es))
	for i, e := range es {
		v := &view{ch: make(chan struct{}, 16)}
		views[i] = v
		reg := e.Keys()
		reg.ResyncInterval = time.Hour
		load := func() {
			f, err := reg.Load()
			if err != nil {
				t.Error(err)
				return
			}
			entries, err := f.Entries()
			if err != nil {
				t.Error(err)
				return
			}
			k, err := auth.NewKeySet(entries)
			if err != nil {
				t.Error(err)
				return
			}
			v.mu.Lock()
			v.keys = k
			v.mu.Unlock()
			v.ch <- struct{}{}
		}
		wg.Add(1)
		go func() { defer wg.Done(); reg.Watch(ctx, load) }()
	}
	// The subscriptions must be up before the first change.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := cli.rdb.PubSubNumSub(ctx, cli.channel()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n[cli.channel()] == int64(len(es)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("edges did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	check := func(what string, want func(*auth.Keys) bool) {
		t.Helper()
		for i, v := range views {
			start := time.Now()
			for {
				v.mu.Lock()
				ok := v.keys != nil && want(v.keys)
				v.mu.Unlock()
				if ok {
					t.Logf("%s reached edge %d in %v", what, i, time.Since(start).Round(time.Microsecond))
					break
				}
				select {
				case <-v.ch:
				case <-time.After(time.Second):
					t.Fatalf("%s did not reach edge %d within a second", what, i)
				}
			}
		}
	}
	key, err := cli.Create(keystore.Record{Name: "team-a", Limits: auth.Limits{RPM: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Create(keystore.Record{Name: "team-a"}); err == nil {
		t.Fatal("a second key named team-a was created")
	}
	check("create", func(k *auth.Keys) bool { c, ok := k.Lookup(key); return ok && c.Limits.RPM == 5 })
	if err := cli.Update("team-a", func(r *keystore.Record) { r.Disabled = true }); err != nil {
		t.Fatal(err)
	}
	check("disable", func(k *auth.Keys) bool { c, ok := k.Lookup(key); return ok && c.Disabled })
	if err := cli.Remove("team-a"); err != nil {
		t.Fatal(err)
	}
	check("remove", func(k *auth.Keys) bool { _, ok := k.Lookup(key); return !ok })
	if err := cli.Remove("team-a"); err == nil {
		t.Fatal("removing a missing key succeeded")
	}
}
