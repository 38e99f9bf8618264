package e2e

import (
	"errors"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestFallbackAndNoKeyWithSDK, with the OpenAI SDK: a model routed to
// openai (always failing with 500) with a fallback to anthropic is served
// by the fallback with the request converted, whole and streamed; then,
// with the only openai key cooling past the retry budget, a request that
// can make no attempt gets an OpenAI-format 429 with Retry-After.
func TestFallbackAndNoKeyWithSDK(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.Keys.MaxCooldown = 10 * time.Second
		f.Retry.MaxAttempts, f.Retry.Budget = 2, 500*time.Millisecond
		f.Routes = []relaycmd.RouteFile{{Model: "smart", Provider: "openai", UpstreamModel: "fail-500",
			Fallbacks: []relaycmd.FallbackFile{{Provider: "anthropic", Model: "claude-sonnet-4-5"}}}}
	}})
	ctx := testCtx(t, 20*time.Second)
	p := chatParams
	p.Model = "smart"
	resp, err := s.openai().Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Choices[0]; c.Message.Content != fakeprovider.Text(8) || c.FinishReason != "stop" {
		t.Fatalf("answer %q finish %q", c.Message.Content, c.FinishReason)
	}
	checkUpstream(t, lastRequest(t, s), "anthropic", "/v1/messages")
	acc, err := accumulate(ctx, s.openai(), p)
	if err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != fakeprovider.Text(8) {
		t.Fatalf("streamed answer %q", acc.Choices[0].Message.Content)
	}
	last := lastRequest(t, s)
	checkUpstream(t, last, "anthropic", "/v1/messages")
	if !last.Stream || last.Model != "claude-sonnet-4-5" {
		t.Fatalf("fallback got stream=%v model %q", last.Stream, last.Model)
	}
	if n := len(s.fake.Requests()); n != 6 {
		t.Fatalf("%d upstream requests, want 2×(2 failed + 1 fallback)", n)
	}

	// The provider's own 429 (Retry-After 1 s) cools the only openai key.
	p.Model = "fail-429"
	_, err = s.openai().Chat.Completions.New(ctx, p)
	wantOpenAIError(t, err, 429, "")
	p.Model = "gpt-4o"
	_, err = s.openai().Chat.Completions.New(ctx, p)
	wantOpenAIError(t, err, 429, "every provider key for this model is rate-limited")
	var e *openai.Error
	if errors.As(err, &e); e.Response.Header.Get("Retry-After") != "1" || e.Type != "rate_limit_error" {
		t.Fatalf("Retry-After %q, type %q; want 1 and rate_limit_error", e.Response.Header.Get("Retry-After"), e.Type)
	}
	if n := len(s.fake.Requests()); n != 7 {
		t.Fatalf("%d upstream requests, want 7: the last request must make no attempt", n)
	}
}
