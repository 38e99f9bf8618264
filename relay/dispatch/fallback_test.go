package dispatch

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestFallbackOfAnotherFamily: once the route's provider has failed every
// attempt before the first byte, a fallback speaking another API format
// gets the request converted for it, and the client its own format back;
// an endpoint that cannot be converted skips that fallback with a log line.
func TestFallbackOfAnotherFamily(t *testing.T) {
	for _, tc := range []struct {
		name, primary, fallback, path, body string
		wantUpstream                        string // path the fallback must get; "" means it is skipped
		wantClient                          string // in the client's answer
	}{
		{"chat to anthropic", "openai", "anthropic", "/v1/chat/completions", chat("smart", false),
			"/v1/messages", `"object":"chat.completion"`},
		{"chat to anthropic, streamed", "openai", "anthropic", "/v1/chat/completions", chat("smart", true),
			"/v1/messages", "data: [DONE]"},
		{"converted primary, same-family fallback", "anthropic", "openai", "/v1/chat/completions", chat("smart", true),
			"/v1/chat/completions", "data: [DONE]"},
		{"embeddings cannot be converted", "openai", "anthropic", "/v1/embeddings", `{"model":"smart","input":"hi"}`,
			"", "(Strait relay: gave up after 2 attempts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{keys: []string{"k1"}, retry: RetryPolicy{MaxAttempts: 2}})
			kind := map[string]upstream.Kind{"openai": upstream.OpenAI, "anthropic": upstream.Anthropic}
			reg, err := upstream.New(upstream.Config{
				Providers: []upstream.ProviderConfig{
					{Name: "primary", Kind: kind[tc.primary], BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k-primary")}},
					{Name: "backup", Kind: kind[tc.fallback], BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k-backup")}},
				},
				Routes: []upstream.RouteConfig{{Model: "smart", Provider: "primary", UpstreamModel: "model-a",
					Fallbacks: []upstream.TargetConfig{{Provider: "backup", Model: "model-b"}}}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			r.d.SetRegistry(reg)
			r.fake.SetKeyFault("k-primary", fakeprovider.Fault{Status: 500})
			res := r.do("openai", tc.path, nil, tc.body)
			got := r.fake.Requests()
			if !strings.Contains(string(res.body), tc.wantClient) {
				t.Errorf("client got %d %s, want it to contain %s", res.status, res.body, tc.wantClient)
			}
			if tc.wantUpstream == "" {
				if len(got) != 2 || res.status != 500 {
					t.Fatalf("status %d after %d upstream requests, want the primary's 500 after 2", res.status, len(got))
				}
				if r.logs.FilterMessageSnippet("fallback skipped: the request cannot be converted").Len() != 1 {
					t.Fatal("no log line saying why the fallback was skipped")
				}
				return
			}
			if res.status != 200 || len(got) != 3 {
				t.Fatalf("status %d after %d upstream requests, want 200 after 3", res.status, len(got))
			}
			fb := got[2]
			if fb.Family != tc.fallback || fb.Path != tc.wantUpstream || fb.Model != "model-b" {
				t.Fatalf("fallback got %s %s model %q: %s", fb.Family, fb.Path, fb.Model, fb.Body)
			}
			if tc.fallback == "openai" && !bytes.Contains(fb.Body, []byte(`"messages":[{"role":"user","content":"hi"}]`)) {
				t.Fatalf("a same-family fallback must get the client's own body, got %s", fb.Body)
			}
		})
	}
}

// TestNoUsableKey: with every key cooling past the budget, a request that
// could make no attempt gets 429 with Retry-After (the earliest recovery,
// rounded up to seconds); with every key disabled, 503; both in the
// client's format.
func TestNoUsableKey(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fault        fakeprovider.Fault
		family, path string
		body         string
		wantStatus   int
		wantRetry    string
		wantBody     string
	}{
		{"cooling, openai", fakeprovider.Fault{Status: 429, RetryAfter: 2500 * time.Millisecond}, "openai",
			"/v1/chat/completions", chat("gpt-4o", false), 429, "3", `"type":"rate_limit_error"`},
		{"cooling, anthropic", fakeprovider.Fault{Status: 429, RetryAfter: 2500 * time.Millisecond}, "anthropic",
			"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			429, "3", `{"type":"error","error":{"type":"rate_limit_error"`},
		{"disabled, openai", fakeprovider.Fault{Status: 401}, "openai",
			"/v1/chat/completions", chat("gpt-4o", true), 503, "", `"type":"server_error"`},
		{"disabled, anthropic", fakeprovider.Fault{Status: 401}, "anthropic",
			"/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`,
			503, "", `"type":"overloaded_error"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{keys: []string{"k1"}, retry: RetryPolicy{Budget: 300 * time.Millisecond}})
			tc.fault.Count = 1
			r.fake.SetFault(tc.fault)
			// The provider's own 429; the key cools. A rejected key is no
			// client's business: 503 of the relay's own; the key is disabled.
			first := r.do(tc.family, tc.path, nil, tc.body)
			if want := map[int]int{401: 503}[tc.fault.Status]; want != 0 {
				if first.status != want || !strings.Contains(string(first.body), "rejected Strait's key") {
					t.Fatalf("first request: %d %s, want 503 saying the provider rejected Strait's key", first.status, first.body)
				}
			} else if first.status != tc.fault.Status {
				t.Fatalf("first request: status %d, want the provider's %d", first.status, tc.fault.Status)
			}
			res := r.do(tc.family, tc.path, nil, tc.body)
			if n := len(r.fake.Requests()); n != 1 {
				t.Fatalf("%d upstream requests, want 1 (the second request must make no attempt)", n)
			}
			if res.status != tc.wantStatus || res.header.Get("Retry-After") != tc.wantRetry ||
				!strings.Contains(string(res.body), tc.wantBody) || res.header.Get("Content-Type") != "application/json" {
				t.Fatalf("got %d Retry-After %q %v %s; want %d Retry-After %q and %s", res.status,
					res.header.Get("Retry-After"), res.header, res.body, tc.wantStatus, tc.wantRetry, tc.wantBody)
			}
			if res.end.Code != 0 {
				t.Fatalf("ended with %v, want a clean end after the answer", res.end)
			}
		})
	}
}
