package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"

	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestModelRouting proves the routing table through the whole stack with
// the OpenAI SDK: an alias reaches its provider under the upstream name
// with the rest of the body untouched, a claude-* model asked for by an
// OpenAI endpoint the Anthropic API lacks (embeddings) gets a clear 400, and
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
	wantOpenAIError(t, err, 400, `model "claude-sonnet-4-5" is served by the Anthropic API, which has no embeddings endpoint`)

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

// TestModelListings proves each family's model listing, read by its SDK,
// holds the provider's own models plus the table's names and aliases
// (each once), and that with strict_models the Gemini listing is the
// table's alone (here the provider's models: list), answered by the relay.
func TestModelListings(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.Routes = []relaycmd.RouteFile{
			{Model: "fast", Provider: "deepseek", UpstreamModel: "deepseek-chat"},
			{Model: "claude-sonnet-4-5-20250929", Provider: "anthropic"}, // already in the provider's list
			{Model: "sonnet", Provider: "anthropic", UpstreamModel: "claude-sonnet-4-5-20250929"},
			{Model: "gpt-*", Provider: "openai"}, // patterns are not listed
		}
		f.Providers[0].Models = []string{"gpt-4o-mini"}
	}})
	ctx := testCtx(t, 20*time.Second)
	count := func(ids []string) map[string]int {
		m := map[string]int{}
		for _, id := range ids {
			m[id]++
		}
		return m
	}
	var ids []string
	page, err := s.openai().Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	if c := count(ids); c["fast"] != 1 || c["gpt-4o-mini"] != 1 || c["gpt-*"] != 0 || c["sonnet"] != 0 || len(ids) < 3 {
		t.Fatalf("OpenAI listing: %v", ids)
	}
	ids = nil
	apage, err := s.anthropic().Models.List(ctx, anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range apage.Data {
		ids = append(ids, m.ID)
	}
	if c := count(ids); c["sonnet"] != 1 || c["claude-sonnet-4-5-20250929"] != 1 || c["claude-opus-4-1-20250805"] != 1 || c["fast"] != 0 {
		t.Fatalf("Anthropic listing: %v", ids)
	}

	strict := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.StrictModels = true
		f.Providers = append(f.Providers[:2], // openai, anthropic, and a Gemini provider with a models list
			relaycmd.ProviderFile{Kind: "gemini", BaseURL: s.fakeURL,
				APIKeys: []string{providerKeys.Gemini}, Models: []string{"gemini-2.5-flash", "gemini-2.5-pro"}})
	}})
	ids = nil
	for m, err := range strict.gemini(t).Models.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimPrefix(m.Name, "models/"))
	}
	if strings.Join(ids, ",") != "gemini-2.5-flash,gemini-2.5-pro" {
		t.Fatalf("strict Gemini listing: %v", ids)
	}
	if n := len(strict.fake.Requests()); n != 0 {
		t.Fatalf("a strict listing went upstream (%d requests)", n)
	}
}
