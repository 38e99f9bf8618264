package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
)

// rawPost sends body to the edge as a hostile client would: no SDK, any
// content type, any headers. It returns the status and the body.
func (s *stack) rawPost(t *testing.T, key, path, contentType, body string, hdr http.Header) (int, string) {
	t.Helper()
	return s.rawPostWith(t, s.client, key, path, contentType, body, hdr)
}

// rawPostWith is rawPost with another HTTP client.
func (s *stack) rawPostWith(t *testing.T, client *http.Client, key, path, contentType, body string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodPost, s.edgeURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// openAIErrorCode is the "error" member of an OpenAI error body, or "".
func openAIErrorType(body string) string {
	var e struct {
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Type
}

const (
	miniKey   = "strait-mini-only-key-0123456789"
	budgetKey = "strait-budget-key-0123456789"
)

// hostileStack is an edge with a key limited to gpt-4o-mini* and a key with
// a spend budget, and prices for both models.
func hostileStack(t *testing.T) *stack {
	return newStack(t, stackOptions{edgeEdit: edits(
		withKey("mini-only", miniKey, auth.Limits{}, "gpt-4o-mini*"),
		withKey("budget", budgetKey, auth.Limits{DailyBudget: 100}),
		func(f *edgecmd.File) {
			f.Prices = quota.Prices{{Pattern: "gpt-4o-mini*", Price: quota.Price{Input: 0.15, Output: 0.6}},
				{Pattern: "gpt-4o*", Price: quota.Price{Input: 2.5, Output: 10}}}
		})})
}

// TestModelAllowListHolds attacks the model allow-list and budgets as a
// hostile tenant would: bodies that the edge and the relay (or the
// provider) read as different models. None may reach the provider.
func TestModelAllowListHolds(t *testing.T) {
	s := hostileStack(t)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, key, contentType, body string
		want                         int
	}{
		{"control: the allowed model", miniKey, "application/json", `{"model":"gpt-4o-mini",` + msgs + `}`, 200},
		{"leading whitespace, no JSON content type", miniKey, "text/plain", " {\"model\":\"gpt-4o\"," + msgs + "}", 403},
		{"no content type", miniKey, "", "\n{\"model\":\"gpt-4o\"," + msgs + "}", 403},
		{"the model in another case", miniKey, "application/json", `{"model":"gpt-4o","Model":"gpt-4o-mini",` + msgs + `}`, 403},
		{"the model twice", miniKey, "application/json", `{"model":"gpt-4o","model":"gpt-4o-mini",` + msgs + `}`, 400},
		{"unreadable body, key with a model list", miniKey, "text/plain", `model=gpt-4o`, 400},
		{"unreadable body, key with a budget", budgetKey, "text/plain", `model=gpt-4o`, 400},
		{"model not a string", budgetKey, "application/json", `{"model":["gpt-4o"],` + msgs + `}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.fake.Reset()
			status, body := s.rawPost(t, tt.key, "/v1/chat/completions", tt.contentType, tt.body, nil)
			if status != tt.want {
				t.Fatalf("status %d (%s), want %d", status, body, tt.want)
			}
			got := s.fake.Requests()
			if tt.want != 200 {
				if len(got) != 0 {
					t.Fatalf("the provider got %d requests, model %q", len(got), got[0].Model)
				}
				if openAIErrorType(body) == "" {
					t.Errorf("error not in OpenAI's format: %s", body)
				}
				return
			}
			if len(got) != 1 || got[0].Model != "gpt-4o-mini" {
				t.Fatalf("the provider got %+v", got)
			}
		})
	}

	// A key with a budget is billed for the model it used, however the body
	// is spelt.
	if status, body := s.rawPost(t, budgetKey, "/v1/chat/completions", "text/plain", " {\"model\":\"gpt-4o\","+msgs+"}", nil); status != 200 {
		t.Fatalf("budget key: %d %s", status, body)
	}
	waitFor(t, "the budget key's usage billed as gpt-4o", func() bool {
		for _, r := range usageReport(t, s, "key=budget").Rows {
			if r.Model == "gpt-4o" && r.Cost > 0 {
				return true
			}
		}
		return false
	})
}

// waitFor polls cond (state the edge records after the response is written)
// for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 5*time.Second, what, cond)
}

// waitWithin polls cond for up to d.
func waitWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestHugeModelNameDoesNotStopUsage: a 40 KB model name that matches an
// allowed pattern is refused (it once reached the usage store, whose every
// flush then failed, so usage and quotas were lost at restart). Usage of
// other requests survives a restart; a store that cannot write makes the
// edge unready and is counted.
func TestHugeModelNameDoesNotStopUsage(t *testing.T) {
	s := hostileStack(t)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	huge := "gpt-4o-mini-" + strings.Repeat("x", 40<<10)
	status, body := s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", `{"model":"`+huge+`",`+msgs+`}`, nil)
	if status != http.StatusBadRequest || len(s.fake.Requests()) != 0 || len(body) > 2048 {
		t.Fatalf("40 KB model: status %d, %d upstream requests, %d-byte answer; want a short 400", status, len(s.fake.Requests()), len(body))
	}
	if status, body := s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", `{"model":"gpt-4o-mini",`+msgs+`}`, nil); status != 200 {
		t.Fatalf("normal request: %d %s", status, body)
	}
	waitFor(t, "the request's usage", func() bool { return usageReport(t, s, "key=mini-only").Total.Requests == 1 })
	s.stopEdge()
	s.startEdge(s.opts)
	s.waitReady()
	if got := usageReport(t, s, "key=mini-only").Total; got.Requests != 1 {
		t.Fatalf("usage after restart %+v, want the one request", got)
	}
	if code, body := adminGet(t, s.edgeAdmin, "/readyz"); code != 200 {
		t.Fatalf("/readyz %d %s", code, body)
	}

	// The store's file goes away under the edge: it answers, but is no
	// longer ready, and says why.
	if err := s.usage.Close(); err != nil {
		t.Fatal(err)
	}
	if status, body := s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", `{"model":"gpt-4o-mini",`+msgs+`}`, nil); status != 200 {
		t.Fatalf("request with a broken store: %d %s", status, body)
	}
	// The request's usage is added once its response is out; from then on
	// a flush fails.
	waitFor(t, "a failing flush", func() bool { return s.usage.Flush() != nil })
	code, body := adminGet(t, s.edgeAdmin, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "usage store cannot write") {
		t.Errorf("/readyz %d %s; want 503 naming the usage store", code, body)
	}
	if _, m := adminGet(t, s.edgeAdmin, "/metrics"); !regexp.MustCompile(`(?m)^strait_usage_store_flush_failures_total [1-9]`).MatchString(m) {
		t.Errorf("metrics lack the flush failures")
	}
}

// TestModelLabelsBounded: one request per made-up model name used to add
// one metrics series each, refused requests included. Labels are now the
// configured models and patterns, at most maxRoutedLabels served models,
// and "other".
func TestModelLabelsBounded(t *testing.T) {
	s := hostileStack(t)
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	series := func() int {
		_, m := adminGet(t, s.edgeAdmin, "/metrics")
		return strings.Count(m, "\nstrait_requests_total{")
	}
	for i := range 100 {
		// Refused by the allow-list, and served under an allowed pattern.
		s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", fmt.Sprintf(`{"model":"made-up-%d",%s}`, i, msgs), nil)
		s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", fmt.Sprintf(`{"model":"gpt-4o-mini-%d",%s}`, i, msgs), nil)
	}
	before := series()
	if before > 64+8 {
		t.Fatalf("%d request series after 200 model names", before)
	}
	for i := range 50 {
		s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", fmt.Sprintf(`{"model":"gpt-4o-mini-x%d",%s}`, i, msgs), nil)
		s.rawPost(t, miniKey, "/v1/chat/completions", "application/json", fmt.Sprintf(`{"model":"more-%d",%s}`, i, msgs), nil)
	}
	if after := series(); after != before {
		t.Errorf("100 more model names added %d series", after-before)
	}
	_, m := adminGet(t, s.edgeAdmin, "/metrics")
	for _, want := range []string{`model="other",status="403"`, `model="gpt-4o-mini*",status="200"`} {
		if !strings.Contains(m, want) {
			t.Errorf("no series with %s", want)
		}
	}
	// The usage store keys its rows by the same labels: 150 served model
	// names make at most 64 rows of their own and one for the key's pattern.
	waitFor(t, "the usage of 150 served requests", func() bool { return usageReport(t, s, "key=mini-only").Total.Requests == 150 })
	if rows := usageReport(t, s, "key=mini-only").Rows; len(rows) > 64+1 {
		t.Errorf("%d usage rows for 150 model names; want at most 65 (64 of their own)", len(rows))
	}
}

// TestOversizedRequestsAnsweredOnce: a request header too large for the
// tunnel is answered 431 at the edge in the caller's error format (it used
// to become a 502 after five resends), and a body the relay refuses as too
// large is answered 413 without a resend.
func TestOversizedRequestsAnsweredOnce(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) { f.MaxBodyBytes = 64 << 10 }})
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	// Over HTTP/1.1 Go's server takes up to 1 MiB + 4 KiB of headers; past
	// 1 MiB they do not fit the tunnel's header frame.
	h1 := s.client.Transport.(*http.Transport).Clone()
	h1.ForceAttemptHTTP2, h1.TLSNextProto = false, map[string]func(string, *tls.Conn) http.RoundTripper{}
	h1.TLSClientConfig.NextProtos = nil
	big := http.Header{"X-Padding": {strings.Repeat("p", 1<<20+1<<10)}}
	status, body := s.rawPostWith(t, &http.Client{Transport: h1}, clientKey, "/v1/chat/completions", "application/json", `{"model":"gpt-4o-mini",`+msgs+`}`, big)
	if status != http.StatusRequestHeaderFieldsTooLarge || openAIErrorType(body) == "" {
		t.Errorf("1 MB header: %d %.200s; want 431 in OpenAI's format", status, body)
	}
	huge := `{"model":"gpt-4o-mini",` + msgs + `,"pad":"` + strings.Repeat("x", 4<<20) + `"}`
	status, body = s.rawPost(t, clientKey, "/v1/chat/completions", "application/json", huge, nil)
	if status != http.StatusRequestEntityTooLarge || openAIErrorType(body) == "" {
		t.Errorf("body over the relay's limit: %d %.200s; want 413 in OpenAI's format", status, body)
	}
	if len(s.fake.Requests()) != 0 {
		t.Errorf("the provider got %d requests", len(s.fake.Requests()))
	}
	// No resend: the refused body is answered at once, and the header too
	// large to frame is answered on its first stream (its sender's error
	// was dropped when the reader got there first, and the request was
	// resent, about one run in five of the whole suite).
	_, m := adminGet(t, s.edgeAdmin, "/metrics")
	resends := regexp.MustCompile(`(?m)^strait_tunnel_resends_total (\d+)`).FindStringSubmatch(m)
	switch {
	case resends == nil:
		t.Errorf("no strait_tunnel_resends_total in the edge's metrics")
	case resends[1] != "0":
		t.Errorf("refused requests were resent %s times", resends[1])
		for _, e := range s.edgeLogs.FilterMessageSnippet("resending").All() {
			t.Logf("edge: %s %v", e.Message, e.ContextMap())
		}
	}
}
