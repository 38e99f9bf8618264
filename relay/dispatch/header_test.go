package dispatch

import (
	"net/http"
	"testing"
)

// TestResponseHeadersHideTheAccount: what a provider's answer says about
// the operator's account (its cookies, its organization, project and
// workspace ids) or about its own host (Alt-Svc, HSTS) stays at the relay, on every path an answer takes to the
// edge (whole, streamed, an error delivered at once, the last error after
// the retries), while what SDKs read passes.
func TestResponseHeadersHideTheAccount(t *testing.T) {
	account := http.Header{
		"Set-Cookie":                {"__cf_bm=operator; path=/; domain=.api.openai.com; HttpOnly; Secure", "_cfuvid=operator"},
		"Openai-Organization":       {"org-operator"},
		"Openai-Project":            {"proj_operator"},
		"Anthropic-Organization-Id": {"6f1c0a4e-operator"},
		"Anthropic-Workspace-Id":    {"wrkspc_operator"},
		"Alt-Svc":                   {`h3=":443"; ma=86400`},
		"Strict-Transport-Security": {"max-age=31536000; includeSubDomains; preload"},
	}
	sdk := http.Header{
		"X-Ratelimit-Remaining-Requests":         {"99"},
		"Anthropic-Ratelimit-Requests-Remaining": {"99"},
		"Openai-Processing-Ms":                   {"12"},
		"Openai-Version":                         {"2020-10-01"},
	}
	r := newRig(t, rigOptions{keys: []string{"k1"}, upstream: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
			for _, h := range []http.Header{account, sdk} {
				for k, v := range h {
					w.Header()[k] = v
				}
			}
			next.ServeHTTP(w, q)
		})
	}})
	messages := `{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"stream":true}`
	for _, tc := range []struct {
		name, family, path, fault, body string
		status                          int
		requestID                       string // the provider's own, which must pass
	}{
		{"whole", "openai", "/v1/chat/completions", "", chat("gpt-4o", false), 200, "X-Request-Id"},
		{"stream", "openai", "/v1/chat/completions", "", chat("gpt-4o", true), 200, "X-Request-Id"},
		{"anthropic stream", "anthropic", "/v1/messages", "", messages, 200, "Request-Id"},
		{"error delivered", "openai", "/v1/chat/completions", "400", chat("gpt-4o", false), 400, "X-Request-Id"},
		{"last error after retries", "anthropic", "/v1/messages", "503", messages, 503, "Request-Id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.fault != "" {
				h.Set("X-Fake-Fault", tc.fault)
			}
			res := r.do(tc.family, tc.path, h, tc.body)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", res.status, tc.status, res.body)
			}
			for k := range account {
				if v := res.header.Values(k); len(v) > 0 {
					t.Errorf("%s reached the edge: %q", k, v)
				}
			}
			for k, v := range sdk {
				if got := res.header.Get(k); got != v[0] {
					t.Errorf("%s = %q, want %q", k, got, v[0])
				}
			}
			if res.header.Get(tc.requestID) == "" {
				t.Errorf("the provider's %s was dropped", tc.requestID)
			}
		})
	}
}
