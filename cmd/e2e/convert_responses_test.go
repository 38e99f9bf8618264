package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"google.golang.org/genai"

	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestConvertResponsesOnlyModels: models OpenAI serves only on the
// Responses API (o3-pro by the built-in list, "my-agent-*" by the
// provider's responses_models) reached from the Chat, Anthropic and Gemini
// SDKs, whole and streamed, with usage.
func TestConvertResponsesOnlyModels(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		for i := range f.Providers {
			if f.Providers[i].Kind == "openai" {
				f.Providers[i].ResponsesModels = []string{"my-agent-*"}
			}
		}
		f.Routes = []relaycmd.RouteFile{{Model: "my-agent-*", Provider: "openai"}}
	}})
	ctx := testCtx(t, 20*time.Second)
	want := fakeprovider.Text(8)
	for _, model := range []string{"o3-pro", "my-agent-1"} {
		t.Run(model, func(t *testing.T) {
			p := chatParams
			p.Model = model
			resp, err := s.openai().Chat.Completions.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Choices[0].Message.Content != want || resp.Usage.CompletionTokens != 8 {
				t.Fatalf("chat: %q %+v", resp.Choices[0].Message.Content, resp.Usage)
			}
			r := lastRequest(t, s)
			checkUpstream(t, r, "openai", "/v1/responses")
			if !strings.Contains(string(r.Body), `"store":false`) {
				t.Fatalf("upstream body: %s", r.Body)
			}
			acc, err := accumulate(ctx, s.openai(), p)
			if err != nil || acc.Choices[0].Message.Content != want {
				t.Fatalf("chat stream: %v %q", err, acc.Choices[0].Message.Content)
			}

			mp := messageParams
			mp.Model = model
			stream := s.anthropic().Messages.NewStreaming(ctx, mp)
			var msg anthropic.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					t.Fatal(err)
				}
			}
			if err := stream.Err(); err != nil || len(msg.Content) != 1 || msg.Content[0].Text != want || msg.StopReason != anthropic.StopReasonEndTurn {
				t.Fatalf("anthropic stream: %v %+v", err, msg)
			}
			checkUpstream(t, lastRequest(t, s), "openai", "/v1/responses")

			g, err := s.gemini(t).Models.GenerateContent(ctx, model, genai.Text("Say hello"), nil)
			if err != nil || g.Text() != want || g.UsageMetadata.CandidatesTokenCount != 8 {
				t.Fatalf("gemini: %v %+v", err, g)
			}
			checkUpstream(t, lastRequest(t, s), "openai", "/v1/responses")
		})
	}
}
