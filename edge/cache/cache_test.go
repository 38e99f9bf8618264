package cache

import (
	"bytes"
	"testing"
	"time"
)

func TestKeyNormalises(t *testing.T) {
	k := func(scope, body string) string {
		t.Helper()
		key, ok := Key(scope, "POST", "/v1/chat/completions", "", []byte(body))
		if !ok {
			t.Fatalf("%s: not cacheable", body)
		}
		return key
	}
	base := k("a", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`)
	same := []string{
		`{"temperature":0.5,"messages":[{"content":"hi","role":"user"}],"model":"m"}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"user":"u1","metadata":{"x":"y"}}`,
		` {"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5} `,
	}
	for _, b := range same {
		if k("a", b) != base {
			t.Errorf("%s: a different key for the same request", b)
		}
	}
	differ := []struct{ scope, body string }{
		{"b", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5}`},
		{"a", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.50001}`},
		{"a", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"stream":true}`},
		{"a", `{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.5,"tools":[]}`},
	}
	for _, d := range differ {
		if k(d.scope, d.body) == base {
			t.Errorf("%s %s: the same key as a different request", d.scope, d.body)
		}
	}
	if _, ok := Key("a", "POST", "/p", "", []byte(`[1,2]`)); ok {
		t.Error("a body that is not a JSON object was given a key")
	}
	if _, ok := Key("a", "GET", "/v1/models", "", nil); !ok {
		t.Error("a request without a body (a model listing) has no key")
	}
}

func TestBudgetAndTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(Config{MaxBytes: 1000, MaxEntry: 400, Now: func() time.Time { return now }})
	entry := func(n int, ttl time.Duration) *Entry {
		return &Entry{Status: 200, Body: bytes.Repeat([]byte("x"), n), Expires: now.Add(ttl)}
	}
	if c.Put("big", entry(500, time.Minute)) {
		t.Fatal("an entry over MaxEntry was kept")
	}
	for _, k := range []string{"a", "b", "c"} {
		c.Put(k, entry(300, time.Minute)) // 364 bytes each with overhead
	}
	if _, ok := c.Get("a"); ok {
		t.Fatal("the oldest entry survived past the budget")
	}
	if n, _ := c.Bytes(); n > 1000 {
		t.Fatalf("%d bytes held; budget 1000", n)
	}
	c.Get("b") // b is now the most recently used
	c.Put("d", entry(300, time.Second))
	if _, ok := c.Get("c"); ok {
		t.Fatal("c, least recently used, survived")
	}
	if _, ok := c.Get("b"); !ok {
		t.Fatal("b, recently used, was evicted")
	}
	now = now.Add(2 * time.Second)
	if _, ok := c.Get("d"); ok {
		t.Fatal("an expired entry was served")
	}
	if n, entries := c.Bytes(); entries != 1 || n != 364 {
		t.Fatalf("%d bytes in %d entries after expiry; want 364 in 1", n, entries)
	}
}
