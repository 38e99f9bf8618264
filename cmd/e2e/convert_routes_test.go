package e2e

import (
	"testing"
	"time"

	"github.com/strait/strait/scripts/fakeprovider"
)

// TestConvertRoutesByModelName: an Anthropic SDK asking for OpenAI models
// by their well-known names reaches the OpenAI provider, converted, with no
// route configured for them (gpt-*, o3*, chatgpt-*).
func TestConvertRoutesByModelName(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	for _, model := range []string{"gpt-4o-mini", "o3", "chatgpt-4o-latest"} {
		p := messageParams
		p.Model = model
		msg, err := s.anthropic().Messages.New(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if len(msg.Content) != 1 || msg.Content[0].Text != fakeprovider.Text(8) {
			t.Fatalf("%s: %+v", model, msg.Content)
		}
		r := lastRequest(t, s)
		checkUpstream(t, r, "openai", "/v1/chat/completions")
		if r.Model != model {
			t.Fatalf("%s: upstream model %q", model, r.Model)
		}
	}
}
