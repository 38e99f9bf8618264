package dispatch

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestRateLimitRotatesAndCools: a 429 with retry-after on one key makes the
// request move to the other key at once and succeed; the limited key cools
// for the stated time (no request uses it meanwhile), then is used again.
// The keys' clock moves only when the test moves it.
func TestRateLimitRotatesAndCools(t *testing.T) {
	clock := newFakeClock()
	r := newRig(t, rigOptions{keys: []string{"k-limited", "k-good"}, policy: upstream.KeyPolicy{Now: clock.Now}})
	const cool = 400 * time.Millisecond
	r.fake.SetKeyFault("k-limited", fakeprovider.Fault{Status: 429, RetryAfter: cool})
	// The first key is a weighted coin flip: send until a request meets the
	// limited key (it must then have rotated within the same request).
	var res result
	for i := 0; i < 30 && r.state("k-limited") != upstream.Cooling; i++ {
		r.fake.Reset()
		res = r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	}
	if got := r.keysSeen(); len(got) != 2 || got[0] != "k-limited" || got[1] != "k-good" {
		t.Fatalf("keys tried: %v, want k-limited then k-good", got)
	}
	if res.status != 200 || res.header.Get("X-Strait-Attempts") != "2" {
		t.Fatalf("status %d attempts %q, want 200 after 2", res.status, res.header.Get("X-Strait-Attempts"))
	}
	r.fake.Reset()
	clock.Advance(cool - time.Millisecond)
	for range 6 {
		r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	}
	for _, k := range r.keysSeen() {
		if k != "k-good" {
			t.Fatalf("a cooling key was used: %v", r.keysSeen())
		}
	}
	if s := r.state("k-limited"); s != upstream.Cooling {
		t.Fatalf("1ms before the end of its cooldown the key is %v", s)
	}
	clock.Advance(time.Millisecond)
	if s := r.state("k-limited"); s != upstream.Healthy {
		t.Fatalf("after the cooldown the key is %v", s)
	}
	r.fake.SetKeyFault("k-limited", fakeprovider.Fault{})
	r.fake.Reset()
	for range 20 {
		r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	}
	if !strings.Contains(strings.Join(r.keysSeen(), ","), "k-limited") {
		t.Fatalf("the recovered key was never used again: %v", r.keysSeen())
	}
}

// TestRetriesBeforeFirstByte: N provider failures, then success, is one
// successful request for the client, for every retryable status and for
// a stream whose first byte does not come in time.
func TestRetriesBeforeFirstByte(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}, retry: RetryPolicy{MaxAttempts: 3},
		timeouts: upstream.Timeouts{FirstByte: 300 * time.Millisecond}})
	for _, tc := range []struct {
		name  string
		fault fakeprovider.Fault
	}{
		{"500", fakeprovider.Fault{Status: 500, Count: 2}},
		{"502", fakeprovider.Fault{Status: 502, Count: 2}},
		{"503", fakeprovider.Fault{Status: 503, Count: 2}},
		{"504", fakeprovider.Fault{Status: 504, Count: 2}},
		{"529", fakeprovider.Fault{Status: 529, Count: 2}},
		{"no first byte", fakeprovider.Fault{Hang: true, Count: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.fake.Reset()
			r.fake.SetFault(tc.fault)
			res := r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", true))
			if res.status != 200 || res.end.Code != proto.CodeOK || !bytes.Contains(res.body, []byte("[DONE]")) {
				t.Fatalf("status %d end %v body %q", res.status, res.end, res.body)
			}
			if n := len(r.fake.Requests()); n != 3 || res.header.Get("X-Strait-Attempts") != "3" {
				t.Fatalf("%d upstream requests, X-Strait-Attempts %q; want 3", n, res.header.Get("X-Strait-Attempts"))
			}
		})
	}
}

// TestGivesUpSayingHowManyAttempts: a provider that keeps failing gets
// MaxAttempts attempts; the client then gets the provider's own error,
// whose message says how many attempts were made.
func TestGivesUpSayingHowManyAttempts(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1", "k2"}, retry: RetryPolicy{MaxAttempts: 3}})
	r.fake.SetFault(fakeprovider.Fault{Status: 503})
	for _, tc := range []struct{ family, path, body, want string }{
		{"openai", "/v1/chat/completions", chat("gpt-4o", false), `"message":"The service is temporarily unavailable (injected by fakeprovider) (Strait relay: gave up after 3 attempts)"`},
		{"anthropic", "/v1/messages", chat("claude-x", false), `(Strait relay: gave up after 3 attempts)"`},
	} {
		r.fake.Reset()
		res := r.do(tc.family, tc.path, nil, tc.body)
		if res.status != 503 || !strings.Contains(string(res.body), tc.want) || len(r.fake.Requests()) != 3 {
			t.Errorf("%s: status %d, %d upstream requests, body %s; want 503 with %s", tc.family, res.status, len(r.fake.Requests()), res.body, tc.want)
		}
	}
}

// TestNoRetryAfterFirstByte: a stream that breaks after its first bytes is
// never retried; it ends with an error code (the edge turns it into an
// in-band error), and nothing resembling a clean end is forwarded.
func TestNoRetryAfterFirstByte(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	res := r.do("openai", "/v1/chat/completions", http.Header{"X-Fake-Break-After": {"3"}}, chat("gpt-4o", true))
	if res.status != 200 || res.end.Code != proto.CodeUpstreamBroken {
		t.Fatalf("status %d end %v, want 200 then upstream_broken", res.status, res.end)
	}
	if bytes.Contains(res.body, []byte("[DONE]")) || !bytes.Contains(res.body, []byte(`"content":"tok0"`)) {
		t.Fatalf("body %q: want the first pieces and no [DONE]", res.body)
	}
	if n := len(r.fake.Requests()); n != 1 {
		t.Fatalf("the provider got %d requests; a started stream must not be retried", n)
	}
}

// Test401DisablesKey walks a key through disabled → half-open → healthy:
// a 401 disables it (loudly) and the request succeeds on the other key;
// no request uses it while disabled; after the rest one request probes it,
// and a success makes it healthy again.
// The keys' clock moves only when the test moves it.
func Test401DisablesKey(t *testing.T) {
	const rest = 300 * time.Millisecond
	clock := newFakeClock()
	r := newRig(t, rigOptions{keys: []string{"k-revoked", "k-good"}, policy: upstream.KeyPolicy{ProbeAfter: rest, Now: clock.Now}})
	r.fake.SetKeyFault("k-revoked", fakeprovider.Fault{Status: 401})
	for i := 0; i < 30 && r.state("k-revoked") != upstream.Disabled; i++ {
		if res := r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false)); res.status != 200 {
			t.Fatalf("request %d: status %d: a revoked key among good ones must not fail requests", i, res.status)
		}
	}
	if n := r.logs.FilterMessageSnippet("PROVIDER KEY DISABLED").Len(); n != 1 {
		t.Fatalf("%d loud log lines for the disabled key, want 1", n)
	}
	r.fake.Reset()
	clock.Advance(rest - time.Millisecond)
	for range 5 {
		r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	}
	if strings.Contains(strings.Join(r.keysSeen(), ","), "k-revoked") {
		t.Fatalf("a disabled key was used: %v", r.keysSeen())
	}
	if s := r.state("k-revoked"); s != upstream.Disabled {
		t.Fatalf("1ms before the end of its rest the key is %v, want disabled", s)
	}
	clock.Advance(time.Millisecond)
	if s := r.state("k-revoked"); s != upstream.HalfOpen {
		t.Fatalf("after the rest the key is %v, want half_open", s)
	}
	r.fake.SetKeyFault("k-revoked", fakeprovider.Fault{}) // the key was renewed upstream
	for i := 0; i < 30 && r.state("k-revoked") != upstream.Healthy; i++ {
		r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	}
	if s := r.state("k-revoked"); s != upstream.Healthy {
		t.Fatalf("after a successful probe the key is %v", s)
	}
}

// TestAllKeysCoolingWaits: when every key is cooling, the request waits
// for the earliest recovery (within its budget) and then succeeds, instead
// of failing at once.
func TestAllKeysCoolingWaits(t *testing.T) {
	const cool = 500 * time.Millisecond
	r := newRig(t, rigOptions{keys: []string{"k1", "k2"}})
	r.fake.SetFault(fakeprovider.Fault{Status: 429, RetryAfter: cool, Count: 2})
	res := r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	if res.status != 200 || len(r.fake.Requests()) != 3 {
		t.Fatalf("status %d after %d upstream requests, want 200 after 3", res.status, len(r.fake.Requests()))
	}
	if res.elapsed < cool-50*time.Millisecond {
		t.Fatalf("succeeded after %v: it cannot have waited for a %v cooldown", res.elapsed, cool)
	}
	if r.logs.FilterMessageSnippet("waiting for the first to recover").Len() == 0 {
		t.Fatal("no log line about waiting for a key")
	}
	t.Logf("waited for a cooling key; answered after %v", res.elapsed)
}

// TestFallbackProvider: when the route's provider fails every attempt, its
// fallback serves the request under its own model name.
func TestFallbackProvider(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}, retry: RetryPolicy{MaxAttempts: 2}})
	reg, err := upstream.New(upstream.Config{
		Providers: []upstream.ProviderConfig{
			{Name: "primary", Kind: upstream.OpenAI, BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k-primary")}},
			{Name: "backup", Kind: upstream.OpenAICompatible, BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k-backup")}},
		},
		Routes: []upstream.RouteConfig{{Model: "smart", Provider: "primary", UpstreamModel: "gpt-4o",
			Fallbacks: []upstream.TargetConfig{{Provider: "backup", Model: "deepseek-chat"}}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.d.SetRegistry(reg)
	r.fake.SetKeyFault("k-primary", fakeprovider.Fault{Status: 500})
	res := r.do("openai", "/v1/chat/completions", nil, chat("smart", false))
	got := r.fake.Requests()
	if res.status != 200 || len(got) != 3 || got[0].Model != "gpt-4o" || got[2].Model != "deepseek-chat" {
		t.Fatalf("status %d; upstream saw %d requests (%v…)", res.status, len(got), r.keysSeen())
	}
	if !bytes.Contains(got[2].Body, []byte(`"messages":[{"role":"user","content":"hi"}]`)) {
		t.Fatalf("fallback body %s", got[2].Body)
	}
}

// TestKeyStateSurvivesReload: a registry rebuilt from the same config
// keeps a disabled key disabled (matched by fingerprint).
func TestKeyStateSurvivesReload(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k-revoked"}})
	r.fake.SetKeyFault("k-revoked", fakeprovider.Fault{Status: 401})
	r.do("openai", "/v1/chat/completions", nil, chat("gpt-4o", false))
	next, err := upstream.New(upstream.Config{Providers: []upstream.ProviderConfig{
		{Name: "openai", Kind: upstream.OpenAI, BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k-revoked"), upstream.NewKey("k-new")}},
	}}, r.reg)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]upstream.KeyState{}
	for _, s := range next.KeyStatuses() {
		states[s.Fingerprint] = s.State
	}
	if states[upstream.NewKey("k-revoked").Fingerprint()] != upstream.Disabled || states[upstream.NewKey("k-new").Fingerprint()] != upstream.Healthy {
		t.Fatalf("states after reload: %v", states)
	}
}
