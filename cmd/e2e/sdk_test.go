package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"google.golang.org/genai"

	"github.com/strait/strait/scripts/fakeprovider"
)

// chatStreamText streams a chat completion from client and returns its
// text, or the stream's error.
func chatStreamText(ctx context.Context, client *openai.Client) (string, error) {
	stream := client.Chat.Completions.NewStreaming(ctx, chatParams)
	defer stream.Close()
	var text strings.Builder
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	return text.String(), stream.Err()
}

func (s *stack) openai(opts ...option.RequestOption) *openai.Client {
	base := []option.RequestOption{option.WithBaseURL(s.edgeURL + "/v1/"), option.WithAPIKey(clientKey),
		option.WithHTTPClient(s.client), option.WithMaxRetries(0)}
	c := openai.NewClient(append(base, opts...)...)
	return &c
}

func (s *stack) anthropic() *anthropic.Client {
	c := anthropic.NewClient(anthropicOpts(s, clientKey)...)
	return &c
}

func (s *stack) gemini(t *testing.T) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: clientKey, Backend: genai.BackendGeminiAPI,
		HTTPClient: s.client, HTTPOptions: genai.HTTPOptions{BaseURL: s.edgeURL}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var chatParams = openai.ChatCompletionNewParams{
	Model:    "gpt-4o-mini",
	Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello")},
}

var messageParams = anthropic.MessageNewParams{
	Model:     "claude-sonnet-4-5",
	MaxTokens: 256,
	Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello"))},
}

// sdkCase is one SDK call through the whole stack; it returns the text the
// SDK produced so the test can compare it with what the fake generated.
type sdkCase struct {
	name   string
	family string
	path   string // upstream path the fake must have seen
	call   func(ctx context.Context, t *testing.T, s *stack) (string, error)
	want   string
}

func TestSDKs(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		want := fakeprovider.Text(8)
		cases := []sdkCase{
			{"openai chat", "openai", "/v1/chat/completions", openaiChat, want},
			{"openai chat stream", "openai", "/v1/chat/completions", openaiChatStream, want},
			{"openai embeddings", "openai", "/v1/embeddings", openaiEmbeddings, ""},
			{"openai models", "openai", "/v1/models", openaiModels, ""},
			{"openai responses", "openai", "/v1/responses", openaiResponses, want},
			{"openai responses stream", "openai", "/v1/responses", openaiResponsesStream, want},
			{"anthropic messages", "anthropic", "/v1/messages", anthropicMessages, want},
			{"anthropic messages stream", "anthropic", "/v1/messages", anthropicMessagesStream, want},
			{"anthropic models", "anthropic", "/v1/models", anthropicModels, ""},
			{"gemini generateContent", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", geminiGenerate, want},
			{"gemini streamGenerateContent", "gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", geminiStream, want},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s.fake.Reset()
				got, err := tc.call(testCtx(t, 20*time.Second), t, s)
				if err != nil {
					t.Fatalf("SDK call failed: %v", err)
				}
				if tc.want != "" && got != tc.want {
					t.Fatalf("text = %q, want %q", got, tc.want)
				}
				reqs := s.fake.Requests()
				if len(reqs) != 1 {
					t.Fatalf("fake saw %d requests, want 1", len(reqs))
				}
				checkUpstream(t, reqs[0], tc.family, tc.path)
			})
		}
	})
}

// checkUpstream asserts that the provider got the provider's key in its
// own header and that the client's key appears nowhere in the request.
func checkUpstream(t *testing.T, r fakeprovider.Request, family, path string) {
	t.Helper()
	if r.Family != family || r.Path != path {
		t.Errorf("upstream saw %s %s (family %s), want %s (family %s)", r.Method, r.Path, r.Family, path, family)
	}
	header, want := map[string][2]string{
		"openai":    {"Authorization", "Bearer " + providerKeys.OpenAI},
		"anthropic": {"X-Api-Key", providerKeys.Anthropic},
		"gemini":    {"X-Goog-Api-Key", providerKeys.Gemini},
	}[family][0], map[string]string{
		"openai": "Bearer " + providerKeys.OpenAI, "anthropic": providerKeys.Anthropic, "gemini": providerKeys.Gemini,
	}[family]
	if got := r.Header.Get(header); got != want {
		t.Errorf("upstream %s = %q, want the provider key", header, got)
	}
	if strings.Contains(r.RawQuery, "key=") {
		t.Errorf("a key travelled in the upstream URL: %q", r.RawQuery)
	}
	for name, vv := range r.Header {
		for _, v := range vv {
			if strings.Contains(v, clientKey) {
				t.Errorf("client key leaked upstream in header %s", name)
			}
		}
	}
	if strings.Contains(string(r.Body), clientKey) || strings.Contains(r.RawQuery, clientKey) {
		t.Error("client key leaked upstream in body or query")
	}
}

func openaiChat(ctx context.Context, _ *testing.T, s *stack) (string, error) {
	resp, err := s.openai().Chat.Completions.New(ctx, chatParams)
	if err != nil {
		return "", err
	}
	return resp.Choices[0].Message.Content, nil
}

func openaiChatStream(ctx context.Context, t *testing.T, s *stack) (string, error) {
	p := chatParams
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := s.openai().Chat.Completions.NewStreaming(ctx, p)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		return "", err
	}
	if acc.Usage.CompletionTokens == 0 {
		t.Error("stream carried no usage chunk although include_usage was set")
	}
	return acc.Choices[0].Message.Content, nil
}

func openaiEmbeddings(ctx context.Context, t *testing.T, s *stack) (string, error) {
	resp, err := s.openai().Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "text-embedding-3-small",
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
	})
	if err == nil && (len(resp.Data) != 2 || len(resp.Data[0].Embedding) == 0) {
		t.Errorf("embeddings: got %d vectors", len(resp.Data))
	}
	return "", err
}

func openaiModels(ctx context.Context, t *testing.T, s *stack) (string, error) {
	page, err := s.openai().Models.List(ctx)
	if err == nil && len(page.Data) == 0 {
		t.Error("models list is empty")
	}
	return "", err
}

func openaiResponses(ctx context.Context, _ *testing.T, s *stack) (string, error) {
	resp, err := s.openai().Responses.New(ctx, responses.ResponseNewParams{
		Model: "gpt-4.1", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")},
	})
	if err != nil {
		return "", err
	}
	return resp.OutputText(), nil
}

func openaiResponsesStream(ctx context.Context, _ *testing.T, s *stack) (string, error) {
	stream := s.openai().Responses.NewStreaming(ctx, responses.ResponseNewParams{
		Model: "gpt-4.1", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")},
	})
	defer stream.Close()
	var text strings.Builder
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	return text.String(), stream.Err()
}

func anthropicMessages(ctx context.Context, _ *testing.T, s *stack) (string, error) {
	msg, err := s.anthropic().Messages.New(ctx, messageParams)
	if err != nil {
		return "", err
	}
	return msg.Content[0].Text, nil
}

func anthropicMessagesStream(ctx context.Context, _ *testing.T, s *stack) (string, error) {
	return anthropicStreamText(ctx, s, messageParams)
}

// anthropicStreamText streams a message and returns its text.
func anthropicStreamText(ctx context.Context, s *stack, p anthropic.MessageNewParams) (string, error) {
	stream := s.anthropic().Messages.NewStreaming(ctx, p)
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			return "", err
		}
	}
	if err := stream.Err(); err != nil {
		return "", err
	}
	return msg.Content[0].Text, nil
}

func anthropicModels(ctx context.Context, t *testing.T, s *stack) (string, error) {
	page, err := s.anthropic().Models.List(ctx, anthropic.ModelListParams{})
	if err == nil && len(page.Data) == 0 {
		t.Error("models list is empty")
	}
	return "", err
}

func geminiGenerate(ctx context.Context, t *testing.T, s *stack) (string, error) {
	resp, err := s.gemini(t).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("Say hello"), nil)
	if err != nil {
		return "", err
	}
	return resp.Text(), nil
}

func geminiStream(ctx context.Context, t *testing.T, s *stack) (string, error) {
	var text strings.Builder
	for resp, err := range s.gemini(t).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("Say hello"), nil) {
		if err != nil {
			return "", err
		}
		text.WriteString(resp.Text())
	}
	return text.String(), nil
}

func anthropicOpts(s *stack, key string) []anthropicopt.RequestOption {
	return []anthropicopt.RequestOption{anthropicopt.WithBaseURL(s.edgeURL), anthropicopt.WithAPIKey(key),
		anthropicopt.WithHTTPClient(s.client), anthropicopt.WithMaxRetries(0)}
}

// TestUpstreamHTTP2Reuse: the relay reaches providers over HTTP/2 and keeps
// reusing one warm connection instead of paying a handshake per request.
func TestUpstreamHTTP2Reuse(t *testing.T) {
	s := newStack(t, stackOptions{upstreamH2: true})
	for i := range 20 {
		if _, err := openaiChatStream(testCtx(t, 10*time.Second), t, s); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, ok := s.upstreamProtos.Load("HTTP/2.0"); !ok {
		t.Fatal("the provider never saw HTTP/2")
	}
	if _, ok := s.upstreamProtos.Load("HTTP/1.1"); ok {
		t.Fatal("some upstream requests used HTTP/1.1")
	}
	if n := s.upstreamConns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for 20 sequential requests, want 1", n)
	}
}

// TestGeminiQueryKey: a client key in ?key= authenticates at the edge and
// never travels further, in the URL or anywhere else.
func TestGeminiQueryKey(t *testing.T) {
	s := newStack(t, stackOptions{})
	body := `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	resp, err := s.client.Post(s.edgeURL+"/v1beta/models/gemini-2.5-flash:generateContent?key="+clientKey, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkUpstream(t, s.fake.Requests()[0], "gemini", "/v1beta/models/gemini-2.5-flash:generateContent")
}
