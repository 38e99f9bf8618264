package edge

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/edge/auth"
)

// TestPolicy runs the edge's policy (authenticate, inspect, admit) over
// HTTP against an edge whose tunnel reaches a stub relay: each case sends
// requests until the last one, whose answer must carry the status, the
// words and the headers of the rule that decided it, in the caller's API
// family's format, and count under the rule's rejection reason.
func TestPolicy(t *testing.T) {
	expired := time.Now().Add(-time.Hour)
	tests := []struct {
		name   string
		policy Policy
		keys   []auth.Entry
		// before are requests sent first (spending allowances); the last
		// request is path, key, content type and body.
		before                 int
		path, key, ctype, body string
		wantStatus             int
		wantBody               []string
		wantHeader             []string
		wantReason             string
	}{
		{name: "valid key", keys: []auth.Entry{entry("app", auth.Client{})},
			path: chatPath, key: "key-of-app", ctype: jsonType, body: chatBody,
			wantStatus: http.StatusOK, wantBody: []string{`"chat.completion"`}},
		{name: "missing key", keys: []auth.Entry{entry("app", auth.Client{})},
			path: chatPath, ctype: jsonType, body: chatBody,
			wantStatus: http.StatusUnauthorized, wantBody: []string{"invalid_api_key", "Missing Strait client key"}, wantReason: "invalid_key"},
		{name: "wrong key, Anthropic's format", keys: []auth.Entry{entry("app", auth.Client{})},
			path: messagesPath, key: "key-of-nobody", ctype: jsonType, body: messagesBody,
			wantStatus: http.StatusUnauthorized, wantBody: []string{`"type":"error"`, "authentication_error", "Invalid Strait client key"},
			wantReason: "invalid_key"},
		{name: "expired key", keys: []auth.Entry{entry("old", auth.Client{Expires: expired})},
			path: chatPath, key: "key-of-old", ctype: jsonType, body: chatBody,
			wantStatus: http.StatusUnauthorized, wantBody: []string{"invalid_api_key", "expired"}, wantReason: "key_unusable"},
		{name: "key guessing slowed per IP", policy: Policy{UnauthRPM: 2}, keys: []auth.Entry{entry("app", auth.Client{})},
			before: 2, path: chatPath, key: "key-of-guess", ctype: jsonType, body: chatBody,
			wantStatus: http.StatusTooManyRequests, wantBody: []string{"unauthenticated requests from this IP address"},
			wantHeader: []string{"Retry-After", "X-Ratelimit-Limit-Requests"}, wantReason: "ip_rate_limit"},
		{name: "model not allowed", keys: []auth.Entry{entry("app", auth.Client{Models: []string{"gpt-4o*"}})},
			path: messagesPath, key: "key-of-app", ctype: jsonType, body: messagesBody,
			wantStatus: http.StatusForbidden, wantBody: []string{"may not use model", "claude-sonnet-4-5"}, wantReason: "model_not_allowed"},
		{name: "body declared JSON is not", keys: []auth.Entry{entry("app", auth.Client{})},
			path: chatPath, key: "key-of-app", ctype: jsonType, body: `{"model":`,
			wantStatus: http.StatusBadRequest, wantBody: []string{"not valid JSON"}, wantReason: "bad_request"},
		{name: "unreadable model under an allow-list", keys: []auth.Entry{entry("app", auth.Client{Models: []string{"gpt-4o*"}})},
			path: chatPath, key: "key-of-app", ctype: "text/plain", body: "not json",
			wantStatus: http.StatusBadRequest, wantBody: []string{"cannot read the model"}, wantReason: "model_unreadable"},
		{name: "requests per minute, Anthropic's headers", keys: []auth.Entry{entry("app", auth.Client{Limits: auth.Limits{RPM: 1}})},
			before: 1, path: messagesPath, key: "key-of-app", ctype: jsonType, body: messagesBody,
			wantStatus: http.StatusTooManyRequests, wantBody: []string{"rate_limit_error", "requests per minute"},
			wantHeader: []string{"Retry-After", "X-Ratelimit-Remaining-Requests", "Anthropic-Ratelimit-Requests-Limit"},
			wantReason: "rate_limit_requests"},
		{name: "daily tokens spent", keys: []auth.Entry{entry("app", auth.Client{Limits: auth.Limits{DailyTokens: 10}})},
			path: chatPath, key: "key-of-app", ctype: jsonType, body: chatBody,
			wantStatus: http.StatusTooManyRequests, wantBody: []string{"insufficient_quota"},
			wantHeader: []string{"Retry-After", "X-Should-Retry"}, wantReason: "quota"},
		// An output cap near int64's maximum must not wrap the estimate
		// to a negative number, which would pass every quota and, held
		// while in flight, give the key's other requests room beyond it.
		{name: "max_tokens past the estimate's range", keys: []auth.Entry{entry("app", auth.Client{Limits: auth.Limits{DailyTokens: 1000}})},
			path: chatPath, key: "key-of-app", ctype: jsonType,
			body:       `{"model":"gpt-4o-mini","max_tokens":9223372036854775807,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: http.StatusTooManyRequests, wantBody: []string{"insufficient_quota", "daily token quota"},
			wantHeader: []string{"Retry-After", "X-Should-Retry"}, wantReason: "quota"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newEdgeRig(t, Config{Policy: tc.policy}, tc.keys...)
			for range tc.before {
				r.post(tc.path, tc.key, tc.ctype, tc.body)
			}
			got := r.post(tc.path, tc.key, tc.ctype, tc.body)
			if got.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", got.status, tc.wantStatus, got.body)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(got.body, w) {
					t.Errorf("body lacks %q: %s", w, got.body)
				}
			}
			for _, h := range tc.wantHeader {
				if got.header.Get(h) == "" {
					t.Errorf("no %s header: %v", h, got.header)
				}
			}
			if tc.wantReason != "" {
				if n := r.counter("strait_rejections_total", map[string]string{"reason": tc.wantReason}); n != 1 {
					t.Errorf("strait_rejections_total{reason=%q} = %v, want 1", tc.wantReason, n)
				}
			}
		})
	}
}

// TestSourceIP: the IP-based allowance is keyed on the TCP peer's address,
// without its port, so reconnecting does not reset it; an IPv6 peer on its
// /64, so stepping through the addresses of its network does not either.
func TestSourceIP(t *testing.T) {
	for _, tc := range []struct{ remote, want, wantKey string }{
		{"192.0.2.7:51234", "192.0.2.7", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1", "2001:db8::/64"},
		{"[2001:db8:0:7:a:b:c:d]:443", "2001:db8:0:7:a:b:c:d", "2001:db8:0:7::/64"},
		{"[::ffff:192.0.2.7]:443", "::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"[fe80::1%eth0]:443", "fe80::1%eth0", "fe80::/64"},
		{"not-an-address", "not-an-address", "not-an-address"},
	} {
		got := sourceIP(&http.Request{RemoteAddr: tc.remote})
		if got != tc.want {
			t.Errorf("sourceIP(%q) = %q, want %q", tc.remote, got, tc.want)
		}
		if key := ipLimitKey(got); key != tc.wantKey {
			t.Errorf("ipLimitKey(%q) = %q, want %q", got, key, tc.wantKey)
		}
	}
}
