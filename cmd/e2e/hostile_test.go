package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
)

// rawPost sends body to the edge as a hostile client would: no SDK, any
// content type, any headers. It returns the status and the body.
func (s *stack) rawPost(t *testing.T, key, path, contentType, body string, hdr http.Header) (int, string) {
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
	resp, err := s.client.Do(req)
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
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
