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

// TestOpenRedisURLErrorHidesPassword: the URL's password comes from the
// environment (conversations.redis: ${ENV}) precisely to keep it out of
// files, so a URL that does not parse must not put it, or any part of it,
// into the error that the relay logs at start; an error about a URL without
// credentials still says what is wrong.
func TestOpenRedisURLErrorHidesPassword(t *testing.T) {
	for _, tc := range []struct{ url, secret string }{
		{"redis://:p%zzSECRET@127.0.0.1:6379", "SECRET"},     // '%' not followed by hex
		{"redis://:p%zzSECRET@127.0.0.1:6379", "%zz"},        // not even the escape
		{"redis://:SEC/RET@127.0.0.1:6379/0", "SEC"},         // '/' ends the authority early
		{"redis://:SEC#RET@127.0.0.1:6379", "SEC"},           // '#' starts a fragment
		{"redis://user:1234/5678@127.0.0.1:6379", "5678"},    // the rest reads as a database
		{"redis://user:SECRET@127.0.0.1:6379/db", "SECRET"},  // go-redis's own error
		{"redis://user:SECRET@127.0.0.1:6379?x=1", "SECRET"}, // likewise
		{"redis://alice:SECRET@127.0.0.1:6379/db", "alice"},  // the user name too
	} {
		_, err := OpenRedis(RedisConfig{URL: tc.url, Timeout: time.Second})
		if err == nil {
			t.Fatalf("%s: opened", tc.url)
		}
		if strings.Contains(err.Error(), tc.secret) {
			t.Errorf("%s: error %q shows %q", tc.url, err, tc.secret)
		}
	}
	_, err := OpenRedis(RedisConfig{URL: "redis://127.0.0.1:6379/db"})
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("no credentials: error %v, want it to name the bad database", err)
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
