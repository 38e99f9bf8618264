package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestConvertChoicesFanOut: the OpenAI Go SDK asks a Claude and a Gemini
// model for n = 3 choices through edge and relay. The relay makes three
// calls and merges them: whole, three choices at indexes 0-2 and the
// three calls' usage summed; streamed, every chunk accepted by the SDK's
// own accumulator (one id, choice indexes kept), the same three choices
// and the summed usage chunk. n above the relay's limit is an OpenAI 400,
// and a call that fails makes the whole request fail with its error.
func TestConvertChoicesFanOut(t *testing.T) {
	s := convertStack(t)
	for _, model := range []string{"claude-sonnet-4-5", "gemini-2.5-flash"} {
		t.Run(model, func(t *testing.T) {
			ctx := testCtx(t, 30*time.Second)
			p := chatParams
			p.Model = model
			one, err := s.openai().Chat.Completions.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			s.fake.Reset()
			p.N = openai.Int(3)
			resp, err := s.openai().Chat.Completions.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Choices) != 3 || resp.Usage.CompletionTokens != 3*one.Usage.CompletionTokens ||
				resp.Usage.PromptTokens != 3*one.Usage.PromptTokens {
				t.Fatalf("%d choices, usage %+v (one call: %+v)", len(resp.Choices), resp.Usage, one.Usage)
			}
			for i, c := range resp.Choices {
				if c.Index != int64(i) || c.Message.Content != fakeprovider.Text(8) || c.FinishReason != "stop" {
					t.Fatalf("choice %d: %+v", i, c)
				}
			}
			// Only this model's calls count: the previous model's last
			// request ends with a failed call, and the relay cancels its
			// sibling calls, which may still reach the fake after Reset.
			calls := 0
			for _, r := range s.fake.Requests() {
				if r.Model == model {
					calls++
				}
			}
			if calls != 3 {
				t.Fatalf("%d upstream calls for %s, want 3", calls, model)
			}

			// Without include_usage the edge asks for usage itself (to meter
			// the sum) and hides it: the client sees no usage chunk.
			for _, usage := range []bool{true, false} {
				p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(usage)}
				acc := streamChoices(ctx, t, s.openai(), p)
				want := int64(0)
				if usage {
					want = 3 * one.Usage.CompletionTokens
				}
				if len(acc.Choices) != 3 || acc.Usage.CompletionTokens != want {
					t.Fatalf("stream (include_usage %v): %d choices, usage %+v", usage, len(acc.Choices), acc.Usage)
				}
				for i, c := range acc.Choices {
					if c.Index != int64(i) || c.Message.Content != fakeprovider.Text(8) || c.FinishReason != "stop" {
						t.Fatalf("streamed choice %d: %+v", i, c)
					}
				}
			}

			// The edge meters each call once: 8 output tokens for the
			// first call, 3 × 8 for each of the three fan-outs, all
			// reported by the provider, none estimated.
			// The edge records a stream's usage after its last byte.
			var row usagedb.Row
			waitFor(t, "the usage of 4 requests", func() bool {
				for _, row = range usageReport(t, s, "key=test-app").Rows {
					if row.Model == model {
						return row.Requests == 4
					}
				}
				return false
			})
			if want := 8 + 3*3*one.Usage.CompletionTokens; row.Usage.Output != want || row.Estimated != 0 {
				t.Fatalf("metered %+v, want %d output tokens reported", row, want)
			}

			p.N = openai.Int(9)
			_, err = s.openai().Chat.Completions.New(ctx, p)
			wantOpenAIError(t, err, 400, "at most 8 calls")

			p.N = openai.Int(3)
			s.fake.SetFault(fakeprovider.Fault{Status: 400, Count: 1})
			_, err = s.openai().Chat.Completions.New(ctx, p)
			wantOpenAIError(t, err, 400, "")
		})
	}
}

// streamChoices streams p into the SDK's accumulator, failing on any chunk
// the accumulator refuses (another id, a bad index).
func streamChoices(ctx context.Context, t *testing.T, c *openai.Client, p openai.ChatCompletionNewParams) *openai.ChatCompletionAccumulator {
	t.Helper()
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	defer stream.Close()
	acc := &openai.ChatCompletionAccumulator{}
	for chunks := 1; stream.Next(); chunks++ {
		if !acc.AddChunk(stream.Current()) {
			t.Fatalf("the SDK's accumulator refused chunk %d: %s", chunks, stream.Current().RawJSON())
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	return acc
}
