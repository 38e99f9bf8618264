// Package cache is the edge's opt-in response cache: exact-match on the
// normalised request, answered from memory without crossing the border.
// Entries are whole recorded responses (a stream is replayed as recorded,
// its original spacing compressed to nothing), held in an LRU bounded by a
// byte budget, each until its TTL ends. Keys are scoped (per client key),
// so one tenant's cache never answers another's prompt.
package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Entry is one recorded response.
type Entry struct {
	Status  int
	Header  http.Header
	Body    []byte
	Expires time.Time
}

func (e *Entry) size() int64 {
	n := int64(len(e.Body)) + 64
	for k, vs := range e.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v))
		}
	}
	return n
}

// Config sizes a Cache.
type Config struct {
	// MaxBytes bounds what the entries hold together; zero means 64 MiB.
	MaxBytes int64
	// MaxEntry bounds one entry (a larger response is not kept); zero
	// means MaxBytes/16.
	MaxEntry int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Cache is safe for concurrent use.
type Cache struct {
	cfg   Config
	mu    sync.Mutex
	lru   *simplelru.LRU[string, *Entry]
	bytes int64
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.MaxEntry <= 0 {
		cfg.MaxEntry = cfg.MaxBytes / 16
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Cache{cfg: cfg}
	// The LRU's own bound is on entries; the byte budget is enforced in
	// Put, and the eviction callback keeps the byte count.
	c.lru, _ = simplelru.NewLRU[string, *Entry](1<<30, func(_ string, e *Entry) { c.bytes -= e.size() })
	return c
}

// MaxEntry is the largest response the cache keeps, for recorders.
func (c *Cache) MaxEntry() int64 { return c.cfg.MaxEntry }

// Get returns the live entry for key.
func (c *Cache) Get(key string) (*Entry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(key)
	if !ok {
		return nil, false
	}
	if !c.cfg.Now().Before(e.Expires) {
		c.lru.Remove(key)
		return nil, false
	}
	return e, true
}

// Put keeps e under key, evicting the least recently used entries while
// the budget is exceeded. An entry over MaxEntry is not kept.
func (c *Cache) Put(key string, e *Entry) bool {
	sz := e.size()
	if sz > c.cfg.MaxEntry {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(key)
	c.lru.Add(key, e)
	c.bytes += sz
	for c.bytes > c.cfg.MaxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
	return true
}

// Bytes is what the entries hold, and Len how many there are.
func (c *Cache) Bytes() (bytes int64, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, c.lru.Len()
}

// ignored are request fields that do not change the answer: who asks
// (the scope says that) and bookkeeping the provider echoes at most.
var ignored = []string{"user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"}

// Key is the cache key of a request in scope (e.g. the client key's
// name): method, path, query and the body with its fields in canonical
// order and the ignored fields dropped. ok is false for a body that is not
// one JSON object (nothing to normalise: never cached).
func Key(scope, method, path, query string, body []byte) (key string, ok bool) {
	canon := []byte{}
	if len(bytes.TrimSpace(body)) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return "", false
		}
		for _, f := range ignored {
			delete(m, f)
		}
		var err error
		if canon, err = canonical(m); err != nil {
			return "", false
		}
	}
	h := sha256.New()
	for _, p := range []string{scope, method, path, query} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil)), true
}

// canonical re-encodes v with every object's keys sorted (encoding/json
// sorts map keys) and numbers kept as written.
func canonical(m map[string]json.RawMessage) ([]byte, error) {
	var v any
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
