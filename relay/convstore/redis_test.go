package convstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/scripts/redistest"
)

func openRedis(t *testing.T, cfg RedisConfig) *Redis {
	t.Helper()
	r, err := OpenRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRedis, against a real redis-server: two relays with the same prefix
// share records (put through one, read and deleted through the other);
// another prefix sees none of them; a record over the cap is refused; a
// record is gone after its TTL; and a Redis that went away is an error,
// never a "not found" that would tell the client its conversation expired.
func TestRedis(t *testing.T) {
	srv := redistest.Start(t)
	a := openRedis(t, RedisConfig{URL: srv.URL(), MaxRecordBytes: 100})
	b := openRedis(t, RedisConfig{URL: srv.URL()})
	other := openRedis(t, RedisConfig{URL: srv.URL(), Prefix: "other:"})
	val := []byte(`{"items":[]}`)
	if err := a.Put("resp_1", val); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get("resp_1"); err != nil || !bytes.Equal(v, val) {
		t.Fatalf("shared get: %q %v", v, err)
	}
	if _, err := other.Get("resp_1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another prefix read the record: %v", err)
	}
	if ok, err := other.Delete("resp_1"); ok || err != nil {
		t.Fatalf("another prefix deleted the record: %v %v", ok, err)
	}
	if ttl := a.rdb.PTTL(t.Context(), "strait:conv:resp_1").Val(); ttl <= DefaultTTL-time.Minute || ttl > DefaultTTL {
		t.Fatalf("record TTL %s, want about %s", ttl, DefaultTTL)
	}
	if ok, err := b.Delete("resp_1"); !ok || err != nil {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if _, err := a.Get("resp_1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if ok, _ := a.Delete("resp_1"); ok {
		t.Fatal("deleted twice")
	}
	if err := a.Put("big", bytes.Repeat([]byte("x"), 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the record cap: %v", err)
	}

	short := openRedis(t, RedisConfig{URL: srv.URL(), TTL: 20 * time.Millisecond})
	if err := short.Put("resp_2", val); err != nil {
		t.Fatal(err)
	}
	// Redis expires the key on its own clock: wait for that, boundedly.
	for i := 0; ; i++ {
		_, err := short.Get("resp_2")
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil || i == 500 {
			t.Fatalf("record outlived its TTL (%d polls): %v", i, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	srv.Stop()
	if _, err := a.Get("resp_1"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Redis down: %v, want an error other than ErrNotFound", err)
	}
	if err := a.Put("resp_3", val); err == nil {
		t.Fatal("Redis down: put succeeded")
	}
}

// TestOpenRedisRefused: a Redis that does not answer fails at start.
func TestOpenRedisRefused(t *testing.T) {
	srv := redistest.Start(t)
	url := srv.URL()
	srv.Stop()
	if _, err := OpenRedis(RedisConfig{URL: url, Timeout: time.Second}); err == nil {
		t.Fatal("opened a store on a stopped Redis")
	}
	if _, err := OpenRedis(RedisConfig{URL: "http://nope"}); err == nil {
		t.Fatal("accepted a non-Redis URL")
	}
}

// TestOpenRedisURLErrorHidesPassword: the store's error for a URL that
// does not parse is redisurl's, with no part of the password (the cases are
// redisurl's tests).
func TestOpenRedisURLErrorHidesPassword(t *testing.T) {
	_, err := OpenRedis(RedisConfig{URL: "redis://:p%zzSECRET@127.0.0.1:6379", Timeout: time.Second})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "redis url") {
		t.Errorf("error %v; want one about the redis url, without the password", err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
