package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestModelRouting proves the routing table through the whole stack with
// the OpenAI SDK: an alias reaches its provider under the upstream name
// with the rest of the body untouched, a claude-* model asked for by an
// OpenAI endpoint that has no conversion (embeddings) gets a clear 400, and
// with strict_models an
// unknown model gets a 404 in the OpenAI format, never reaching upstream.
func TestModelRouting(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.StrictModels = true
		f.Routes = []relaycmd.RouteFile{
			{Model: "fast", Provider: "deepseek", UpstreamModel: "deepseek-chat"},
			{Model: "gpt-*", Provider: "openai"},
		}
	}})
	ctx := testCtx(t, 20*time.Second)
	p := chatParams
	p.Model = "fast"
	if _, err := s.openai().Chat.Completions.New(ctx, p); err != nil {
		t.Fatal(err)
	}
	got := s.fake.Requests()
	if len(got) != 1 || got[0].Model != "deepseek-chat" || !strings.Contains(string(got[0].Body), `"Say hello"`) {
		t.Fatalf("upstream saw %d requests; model %q body %s", len(got), got[0].Model, got[0].Body)
	}
	checkUpstream(t, got[0], "openai", "/v1/chat/completions")

	_, err := s.openai().Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "claude-sonnet-4-5",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hi")}})
	wantOpenAIError(t, err, 400, `model "claude-sonnet-4-5" is served by the Anthropic provider "anthropic"`)

	p.Model = "no-such-model"
	_, err = s.openai().Chat.Completions.New(ctx, p)
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != 404 || !strings.Contains(e.Message, `"no-such-model"`) {
		t.Fatalf("err = %v, want a 404 naming the model", err)
	}
	if n := len(s.fake.Requests()); n != 1 {
		t.Fatalf("%d requests reached the provider, want 1", n)
	}
}
