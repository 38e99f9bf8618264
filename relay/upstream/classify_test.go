package upstream

import (
	"math"
	"net/http"
	"testing"
	"time"
)

// TestClassify pins which answers are retried, and how they mark the key.
// Only an error naming the key (each provider's own shape) disables it; a
// 401/403 the client's request caused is delivered and leaves the key be.
func TestClassify(t *testing.T) {
	const (
		oaBadKey    = `{"error":{"message":"Incorrect API key provided: sk-up***789. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`
		oaBadOrg    = `{"error":{"message":"No such organization: org-evil.","type":"invalid_request_error","param":null,"code":"invalid_organization"}}`
		oaProject   = `{"error":{"message":"OpenAI-Project header should match project for API key","type":"invalid_request_error","param":null,"code":"mismatched_project"}}`
		oaDeact     = `{"error":{"message":"The OpenAI account associated with this API key has been deactivated.","type":"invalid_request_error","param":null,"code":"account_deactivated"}}`
		oaRegion    = `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`
		oaQuota     = `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
		oaRate      = `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
		deepseekKey = `{"error":{"message":"Authentication Fails, Your api key: ****abcd is invalid","type":"authentication_error","param":null,"code":"invalid_request_error"}}`
		antBadKey   = `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_1"}`
		antPerm     = `{"type":"error","error":{"type":"permission_error","message":"Your API key does not have permission to use the specified resource."}}`
		gemBadKey   = `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`
		gemSusp     = `{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:x' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED"}]}}`
		gemFile     = `{"error":{"code":403,"message":"You do not have permission to access the File abc or it may not exist.","status":"PERMISSION_DENIED"}}`
		gemBadReq   = `{"error":{"code":400,"message":"Invalid JSON payload received.","status":"INVALID_ARGUMENT"}}`
	)
	for _, tc := range []struct {
		family  string
		status  int
		body    string
		verdict Verdict
		outcome Outcome
	}{
		{"openai", 200, "", Deliver, Worked},
		{"openai", 400, "", Deliver, Worked},
		{"openai", 404, "", Deliver, Worked},
		{"openai", 413, "", Deliver, Worked},
		{"openai", 429, oaRate, RotateKey, RateLimited},
		{"openai", 429, oaQuota, DisableKey, Rejected},
		{"openai", 401, oaBadKey, DisableKey, Rejected},
		{"openai", 401, oaDeact, DisableKey, Rejected},
		{"openai", 401, deepseekKey, DisableKey, Rejected},
		{"openai", 401, oaBadOrg, Deliver, Inconclusive},
		{"openai", 401, oaProject, Deliver, Inconclusive},
		{"openai", 403, oaRegion, Deliver, Inconclusive},
		{"openai", 401, "", Deliver, Inconclusive},
		{"openai", 403, "", Deliver, Inconclusive},
		{"openai", 403, oaBadKey, Deliver, Inconclusive}, // the codes count only with their own status
		{"openai", 402, "", DisableKey, Rejected},
		{"anthropic", 401, antBadKey, DisableKey, Rejected},
		{"anthropic", 403, antPerm, Deliver, Inconclusive},
		{"anthropic", 401, oaBadKey, Deliver, Inconclusive}, // another family's words mean nothing
		{"gemini", 400, gemBadKey, DisableKey, Rejected},
		{"gemini", 403, gemSusp, DisableKey, Rejected},
		{"gemini", 403, gemFile, Deliver, Inconclusive},
		{"gemini", 400, gemBadReq, Deliver, Worked},
		{"gemini", 401, "not json", Deliver, Inconclusive},
		{"openai", 500, "", Backoff, Inconclusive},
		{"openai", 502, "", Backoff, Inconclusive},
		{"openai", 503, "", Backoff, Inconclusive},
		{"openai", 504, "", Backoff, Inconclusive},
		{"anthropic", 529, "", Backoff, Inconclusive},
		{"openai", 501, "", Deliver, Worked},
	} {
		if v, o := Classify(tc.family, tc.status, []byte(tc.body)); v != tc.verdict || o != tc.outcome {
			t.Errorf("Classify(%s, %d, %.60s) = %v, %v; want %v, %v", tc.family, tc.status, tc.body, v, o, tc.verdict, tc.outcome)
		}
	}
}

// TestHeaderFilter: credentials, the relay's own encoding headers, account
// headers and unknown X-* headers stay behind unless a provider allows
// them; credentials and Accept-Encoding can never be allowed. Nor can a
// name with '_', which an upstream that folds '_' into '-' (CGI, WSGI,
// many proxies) would read as one of those.
func TestHeaderFilter(t *testing.T) {
	src := http.Header{
		"Content-Type": {"application/json"}, "Anthropic-Beta": {"b1"}, "Openai-Beta": {"assistants=v2"},
		"Openai-Organization": {"org-evil"}, "Openai-Project": {"proj_evil"}, "X-Goog-User-Project": {"evil"},
		"X-Stainless-Lang": {"python"}, "x-fake-tokens": {"3"}, "X-Title": {"app"},
		"Accept-Encoding": {"gzip, br"}, "Range": {"bytes=0-1"}, "X-Api-Key": {"k"}, "Authorization": {"Bearer k"},
	}
	underscored := []string{"X_api_key", "x_goog_api_key", "Api_key", "Openai_organization", "Accept_encoding",
		"Content_length", "Transfer_encoding", "X_fake_tokens"}
	for _, k := range underscored {
		src[k] = []string{"evil"}
	}
	for _, tc := range []struct {
		allow      []string
		pass, drop []string
	}{
		{nil, []string{"Content-Type", "Anthropic-Beta", "Openai-Beta"},
			append([]string{"Openai-Organization", "Openai-Project", "X-Goog-User-Project", "X-Stainless-Lang", "X-Fake-Tokens", "X-Title",
				"Accept-Encoding", "Range", "X-Api-Key", "Authorization"}, underscored...)},
		{[]string{"x-fake-*", "OpenAI-Organization", "X-*"}, []string{"X-Fake-Tokens", "Openai-Organization", "X-Title", "X-Stainless-Lang"},
			append([]string{"Openai-Project", "Accept-Encoding", "X-Api-Key", "Authorization"}, underscored...)},
		{[]string{"X*", "O*", "A*"}, []string{"X-Title", "Openai-Project", "Anthropic-Beta"}, underscored},
	} {
		f, err := NewHeaderFilter(tc.allow)
		if err != nil {
			t.Fatal(err)
		}
		dst := http.Header{}
		f.Copy(dst, src)
		for _, k := range tc.pass {
			if dst.Get(k) == "" {
				t.Errorf("allow %v: %s was dropped", tc.allow, k)
			}
		}
		for _, k := range tc.drop {
			if dst.Get(k) != "" {
				t.Errorf("allow %v: %s was forwarded", tc.allow, k)
			}
		}
	}
	for _, bad := range []string{"Authorization", "accept-encoding", "*", "X Y", "a:b", "X_Title", "x_*"} {
		if _, err := NewHeaderFilter([]string{bad}); err == nil {
			t.Errorf("allow_headers %q accepted", bad)
		}
	}
}

// TestRetryAfter reads OpenAI's retry-after-ms before Retry-After, in
// seconds or as an HTTP date, and ignores what it cannot read.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{http.Header{"Retry-After": {now.Add(-7 * time.Second).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"-4"}}, 0},
		// Past time.Duration's range: the longest wait, not a negative
		// one read as none (Report caps it at KeyPolicy.MaxCooldown).
		{http.Header{"Retry-After": {"1e12"}}, math.MaxInt64},
		{http.Header{"Retry-After": {"Inf"}}, math.MaxInt64},
		{http.Header{"Retry-After-Ms": {"1e300"}}, math.MaxInt64},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestHugeRetryAfterCoolsForMaxCooldown: a provider that asks for an
// absurd wait gets its key cooled for the longest cooldown, not for the
// short backoff of a 429 that gave no Retry-After.
func TestHugeRetryAfterCoolsForMaxCooldown(t *testing.T) {
	policy := KeyPolicy{}.withDefaults()
	p, err := newKeyPool("p", keys("a"), nil, policy, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := p.Acquire(nil)
	tr, _ := s.Report(RateLimited, RetryAfter(http.Header{"Retry-After": {"1e12"}}, time.Now()))
	if tr.To != Cooling || tr.For != policy.MaxCooldown {
		t.Errorf("transition %+v; want cooling for %v", tr, policy.MaxCooldown)
	}
}

// TestKeyPoolWeightsAndWait proves the weighted choice follows the weights
// and that a pool with every key cooling reports the earliest recovery.
func TestKeyPoolWeightsAndWait(t *testing.T) {
	now := time.Unix(1000, 0)
	p, err := newKeyPool("p", keys("a", "b"), []int{3, 1}, KeyPolicy{}.withDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return now }
	counts := map[string]int{}
	for n := range 4 {
		p.pick = func(int) int { return n } // each point of the total weight once
		s, _ := p.Acquire(nil)
		counts[s.Key.Reveal()]++
		s.Report(Worked, 0)
	}
	if counts["a"] != 3 || counts["b"] != 1 {
		t.Fatalf("choices %v, want a 3 times and b once", counts)
	}
	a, _ := p.Acquire(nil)
	a.Report(RateLimited, 5*time.Second)
	b, _ := p.Acquire(nil)
	b.Report(RateLimited, 2*time.Hour) // capped at MaxCooldown (60s)
	if s, wait := p.Acquire(nil); s != nil || wait != 5*time.Second {
		t.Fatalf("all cooling: got %v, wait %v; want nil, 5s", s, wait)
	}
	now = now.Add(5 * time.Second)
	if s, _ := p.Acquire(nil); s == nil || s.Key.Reveal() != a.Key.Reveal() {
		t.Fatalf("after 5s: got %v, want the first key back", s)
	}
	now = now.Add(56 * time.Second)
	if s, _ := p.Acquire(map[*KeySlot]bool{a: true}); s == nil || s.Key.Reveal() != b.Key.Reveal() {
		t.Fatalf("after the 60s cap: got %v, want the second key back", s)
	}
}
