package edge

import (
	"context"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/edge/cache"
	"github.com/strait/strait/proto/llmapi"
)

// CacheConfig configures the response cache. Model listings are cached for
// every key by default (SDKs list models on start, and each listing would
// cross the border); other responses only for the keys named in Keys.
type CacheConfig struct {
	// MaxBytes bounds the cache's memory; zero means 64 MiB (4 MiB when
	// only model listings are cached).
	MaxBytes int64 `yaml:"max_bytes"`
	// Keys are the client key names whose inference responses are cached;
	// "*" means every key. Empty: none.
	Keys []string `yaml:"keys"`
	// Paths are API paths (path.Match patterns, without a provider
	// prefix, e.g. "/v1/embeddings") whose responses are cached for every
	// key.
	Paths []string `yaml:"paths"`
	// TTL is how long an inference response is served from the cache;
	// zero means 5 minutes.
	TTL time.Duration `yaml:"ttl"`
	// ModelsTTL is how long a model listing is; zero means 1 minute,
	// negative turns listing caching off.
	ModelsTTL time.Duration `yaml:"models_ttl"`
}

// respCache is the edge's cache and its policy.
type respCache struct {
	c       *cache.Cache
	cfg     CacheConfig
	results *prometheus.CounterVec
	// shared, when the store is shared (Redis), holds inference responses
	// for every edge; the local cache stays in front of it.
	shared SharedCache
}

// SharedCache is a response cache several edges share; store.Shared
// implementations may offer it (redisstore.Store does).
type SharedCache interface {
	GetCached(ctx context.Context, key string) (*cache.Entry, bool)
	PutCached(key string, e *cache.Entry)
}

// get looks in the local cache, then the shared one (keeping what it
// finds there locally).
func (rc *respCache) get(ctx context.Context, key string) (*cache.Entry, bool) {
	if e, ok := rc.c.Get(key); ok {
		return e, true
	}
	if rc.shared == nil {
		return nil, false
	}
	e, ok := rc.shared.GetCached(ctx, key)
	if ok {
		rc.c.Put(key, e)
	}
	return e, ok
}

func (rc *respCache) put(key string, e *cache.Entry) bool {
	if rc.shared != nil {
		rc.shared.PutCached(key, e)
	}
	return rc.c.Put(key, e)
}

func newRespCache(cfg CacheConfig) *respCache {
	if cfg.TTL <= 0 {
		cfg.TTL = 5 * time.Minute
	}
	if cfg.ModelsTTL == 0 {
		cfg.ModelsTTL = time.Minute
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
		if len(cfg.Keys) == 0 && len(cfg.Paths) == 0 {
			cfg.MaxBytes = 4 << 20
		}
	}
	return &respCache{c: cache.New(cache.Config{MaxBytes: cfg.MaxBytes}), cfg: cfg,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strait_cache_requests_total",
			Help: "Cacheable requests by result: hit (answered from the edge's cache), miss, stored."}, []string{"result"})}
}

// plan says whether c may be answered from the cache, under which key and
// for how long a response would be kept.
func (rc *respCache) plan(c *call, query string) (key string, ttl time.Duration) {
	if rc == nil || noCache(c.r.Header) || !c.client.Allows(c.req.Model) {
		return "", 0
	}
	switch {
	case c.r.Method == http.MethodGet && strings.HasSuffix(c.route.Path, "/models"):
		ttl = rc.cfg.ModelsTTL
	case c.r.Method == http.MethodPost && c.req.Model != "" && rc.optedIn(c):
		ttl = rc.cfg.TTL
	}
	if ttl <= 0 {
		return "", 0
	}
	// Scoped to the key and the family: one tenant's cache never answers
	// another's prompt, and /v1/models is two different listings.
	// Accept-Encoding too: a response recorded compressed must not reach
	// a client that did not ask for it.
	scope := c.client.Name + "\x00" + string(c.route.Family) + "\x00" + c.route.Provider + "\x00" + c.r.Header.Get("Accept-Encoding")
	// The API version, beta features and account the relay passes on
	// change the answer as the body does: a cached answer is served only to
	// a request with the same values.
	for _, list := range [][]string{llmapi.VersionHeaders, llmapi.AccountHeaders} {
		for _, h := range list {
			scope += "\x00" + strings.Join(c.r.Header.Values(h), "\x01")
		}
	}
	key, ok := cache.Key(scope, c.r.Method, c.route.Path, query, c.body)
	if !ok {
		return "", 0
	}
	return key, ttl
}

// optedIn: c's key or route is configured for caching.
func (rc *respCache) optedIn(c *call) bool {
	if slices.Contains(rc.cfg.Keys, c.client.Name) || slices.Contains(rc.cfg.Keys, "*") {
		return true
	}
	return slices.ContainsFunc(rc.cfg.Paths, func(p string) bool { ok, _ := path.Match(p, c.route.Path); return ok })
}

// noCache: the client opted out (Cache-Control: no-cache or no-store).
func noCache(h http.Header) bool {
	for _, v := range h.Values("Cache-Control") {
		v = strings.ToLower(v)
		if strings.Contains(v, "no-cache") || strings.Contains(v, "no-store") {
			return true
		}
	}
	return false
}

// serveCached answers c from the cache when it can; otherwise it marks c
// to be recorded.
func (e *Edge) serveCached(c *call, query string) bool {
	key, ttl := e.cache.plan(c, query)
	if key == "" {
		return false
	}
	if ent, ok := e.cache.get(c.r.Context(), key); ok {
		e.cache.results.WithLabelValues("hit").Inc()
		h := c.tap.Header()
		for k, v := range ent.Header {
			h[k] = v
		}
		h.Set("X-Strait-Cache", "hit")
		c.cacheHit = true
		c.tap.WriteHeader(ent.Status)
		_, _ = c.tap.Write(ent.Body) // a stream replays at once: its spacing compressed to nothing
		return true
	}
	e.cache.results.WithLabelValues("miss").Inc()
	c.tap.Header().Set("X-Strait-Cache", "miss")
	c.cacheKey, c.cacheTTL = key, ttl
	c.tap.recordLimit = e.cache.c.MaxEntry()
	return false
}

// clientLeftAfterEnd reports whether a response that ended in an error is
// still whole: an event stream whose provider reported its final usage,
// recorded up to its family's last event, cut only because the client went
// away. SDKs close the response at the stream's last event (openai-go at
// [DONE]), which can reach the edge before the tunnel's End does; the
// answer the client read was complete, and so is the record. Usage alone
// does not make it whole: it comes before the last event (Anthropic's
// message_delta, OpenAI's usage chunk).
func clientLeftAfterEnd(c *call, source string) bool {
	rec := c.tap.record
	return source == "reported" && c.r.Context().Err() != nil &&
		strings.HasPrefix(c.tap.recordHeader.Get("Content-Type"), "text/event-stream") &&
		llmapi.EndsEvent(rec) && llmapi.EndsStream(c.route.Family, rec)
}

// perRequest are headers that describe one answer, never replayed.
var perRequest = []string{"X-Request-Id", "X-Strait-Request-Id", "X-Provider-Request-Id", "Server-Timing", "Date",
	"Content-Length", "X-Strait-Cache"}

// storeCached keeps c's response when it is complete and clean: a 200
// that the forwarder finished (returned from, not aborted), recorded in
// full, and (for inference) whose usage the provider reported, which a
// cut stream never has. Errors are never kept.
func (e *Edge) storeCached(c *call, source string) {
	t := c.tap
	if c.cacheKey == "" || c.status != http.StatusOK || t.recordOver || t.recordHeader == nil {
		return
	}
	// A broken answer's Result may say nothing of it: the forwarder
	// aborts one on the handler (http.ErrAbortHandler) without returning,
	// and a panic cuts a detached one without an error. What was recorded
	// is only a part.
	if c.guard.forwarding || c.res.Aborted {
		return
	}
	if c.r.Method == http.MethodPost && source != "reported" {
		return
	}
	if c.res.Err != nil && !clientLeftAfterEnd(c, source) {
		return
	}
	h := t.recordHeader
	for _, k := range perRequest {
		h.Del(k)
	}
	if e.cache.put(c.cacheKey, &cache.Entry{Status: c.status, Header: h, Body: t.record, Expires: time.Now().Add(c.cacheTTL)}) {
		e.cache.results.WithLabelValues("stored").Inc()
	}
}
