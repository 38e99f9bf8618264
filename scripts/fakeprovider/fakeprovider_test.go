package fakeprovider

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"go.uber.org/goleak"
	"google.golang.org/genai"
)

func TestMain(m *testing.M) {
	// genai's dependencies start opencensus' stats worker in an init func.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

const (
	openAIKey    = "sk-test-openai"
	anthropicKey = "sk-ant-test"
	geminiKey    = "AIza-test"
)

var testKeys = Keys{OpenAI: openAIKey, Anthropic: anthropicKey, Gemini: geminiKey}

// env is a fake behind a real HTTP server, plus SDK clients aimed at it.
type env struct {
	fake *Server
	srv  *httptest.Server
}

func start(t *testing.T, cfg Config) *env {
	t.Helper()
	if cfg.Keys == (Keys{}) {
		cfg.Keys = testKeys
	}
	fake := New(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv}
}

func (e *env) openai(key string) *openai.Client {
	c := openai.NewClient(
		option.WithBaseURL(e.srv.URL+"/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
		option.WithHTTPClient(e.srv.Client()),
	)
	return &c
}

func (e *env) anthropic(key string) *anthropic.Client {
	c := anthropic.NewClient(
		aoption.WithBaseURL(e.srv.URL),
		aoption.WithAPIKey(key),
		aoption.WithMaxRetries(0),
		aoption.WithHTTPClient(e.srv.Client()),
	)
	return &c
}

func (e *env) gemini(t *testing.T, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		APIKey:      key,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  e.srv.Client(),
		HTTPOptions: genai.HTTPOptions{BaseURL: e.srv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends a raw request; for what the SDKs cannot express.
func (e *env) do(t *testing.T, method, path string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{Model: model, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")}}
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	}
}

func TestOpenAIChat(t *testing.T) {
	tests := []struct {
		name         string
		stream       bool
		includeUsage bool
		maxTokens    int64
		wantText     string
		wantFinish   string
	}{
		{name: "non-stream", wantText: Text(8), wantFinish: "stop"},
		{name: "non-stream max_tokens", maxTokens: 3, wantText: Text(3), wantFinish: "length"},
		{name: "stream", stream: true, wantText: Text(8), wantFinish: "stop"},
		{name: "stream include_usage", stream: true, includeUsage: true, wantText: Text(8), wantFinish: "stop"},
	}
	e := start(t, Config{})
	client := e.openai(openAIKey)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := chatParams("gpt-4o-mini")
			if tt.maxTokens > 0 {
				params.MaxTokens = openai.Int(tt.maxTokens)
			}
			if tt.includeUsage {
				params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			}
			if !tt.stream {
				res, err := client.Chat.Completions.New(t.Context(), params)
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Choices[0].Message.Content; got != tt.wantText {
					t.Errorf("content = %q, want %q", got, tt.wantText)
				}
				if got := string(res.Choices[0].FinishReason); got != tt.wantFinish {
					t.Errorf("finish_reason = %q, want %q", got, tt.wantFinish)
				}
				if res.Usage.CompletionTokens != int64(len(strings.Fields(tt.wantText))) || res.Usage.PromptTokens == 0 {
					t.Errorf("usage = %+v", res.Usage)
				}
				return
			}
			checkChatStream(t, client.Chat.Completions.NewStreaming(t.Context(), params), tt.includeUsage, tt.wantText, tt.wantFinish)
		})
	}
}

// checkChatStream verifies the chunk sequence: role first, content pieces,
// finish_reason, and a choices-less usage chunk exactly when asked for.
func checkChatStream(t *testing.T, stream interface {
	Next() bool
	Current() openai.ChatCompletionChunk
	Err() error
	Close() error
}, includeUsage bool, wantText, wantFinish string) {
	t.Helper()
	defer stream.Close()
	var text strings.Builder
	var chunks, usageChunks, pieces int
	var finish, role string
	for stream.Next() {
		chunk := stream.Current()
		chunks++
		if hasUsage := strings.Contains(chunk.RawJSON(), `"usage"`); hasUsage != includeUsage {
			t.Errorf("chunk %d has usage key = %v, want %v: %s", chunks, hasUsage, includeUsage, chunk.RawJSON())
		}
		if len(chunk.Choices) == 0 {
			usageChunks++
			if chunk.Usage.CompletionTokens != int64(len(strings.Fields(wantText))) {
				t.Errorf("usage chunk = %s", chunk.RawJSON())
			}
			continue
		}
		d := chunk.Choices[0].Delta
		if chunks == 1 {
			role = d.Role
		}
		if d.Content != "" {
			pieces++
		}
		text.WriteString(d.Content)
		if chunk.Choices[0].FinishReason != "" {
			finish = chunk.Choices[0].FinishReason
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if role != "assistant" || text.String() != wantText || finish != wantFinish {
		t.Errorf("role %q text %q finish %q; want assistant %q %q", role, text.String(), finish, wantText, wantFinish)
	}
	if pieces != len(strings.Fields(wantText)) {
		t.Errorf("got %d content chunks, want one per token", pieces)
	}
	if want := map[bool]int{true: 1, false: 0}[includeUsage]; usageChunks != want {
		t.Errorf("got %d usage chunks, want %d", usageChunks, want)
	}
}

func TestOpenAIEmbeddings(t *testing.T) {
	e := start(t, Config{})
	client := e.openai(openAIKey)
	embed := func(format openai.EmbeddingNewParamsEncodingFormat) []float64 {
		res, err := client.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
			Model:          openai.EmbeddingModelTextEmbedding3Small,
			Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"a", "b"}},
			EncodingFormat: format,
			Dimensions:     openai.Int(64),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) != 2 || len(res.Data[1].Embedding) != 64 || res.Data[1].Index != 1 || res.Usage.PromptTokens == 0 {
			t.Fatalf("unexpected response %s", res.RawJSON())
		}
		return res.Data[0].Embedding
	}
	float, b64 := embed(""), embed(openai.EmbeddingNewParamsEncodingFormatBase64)
	for i := range float {
		if float32(float[i]) != float32(b64[i]) {
			t.Fatalf("float and base64 embeddings differ at %d: %v vs %v", i, float[i], b64[i])
		}
	}
	reqs := e.fake.Requests()
	if strings.Contains(string(reqs[0].Body), "encoding_format") {
		t.Errorf("openai-go sent encoding_format by default: %s", reqs[0].Body)
	}
}

func TestOpenAIModels(t *testing.T) {
	e := start(t, Config{})
	client := e.openai(openAIKey)
	page, err := client.Models.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 || page.Data[0].Object != "model" {
		t.Fatalf("list = %s", page.RawJSON())
	}
	m, err := client.Models.Get(t.Context(), "ft:gpt-4o:org::abc")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "ft:gpt-4o:org::abc" {
		t.Errorf("get id = %q", m.ID)
	}
}

func TestOpenAIResponses(t *testing.T) {
	e := start(t, Config{Tokens: 5})
	client := e.openai(openAIKey)
	params := responses.ResponseNewParams{Model: "gpt-5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello")}}

	res, err := client.Responses.New(t.Context(), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != Text(5) || res.Status != "completed" || res.Usage.OutputTokens != 5 {
		t.Errorf("non-stream: text %q status %q usage %+v", res.OutputText(), res.Status, res.Usage)
	}

	stream := client.Responses.NewStreaming(t.Context(), params)
	defer stream.Close()
	var types []string
	var deltas strings.Builder
	var final responses.Response
	for i := 0; stream.Next(); i++ {
		ev := stream.Current()
		if ev.SequenceNumber != int64(i) {
			t.Errorf("event %d has sequence_number %d", i, ev.SequenceNumber)
		}
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			deltas.WriteString(ev.Delta)
		case "response.completed":
			final = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"}
	for range 5 {
		want = append(want, "response.output_text.delta")
	}
	want = append(want, "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed")
	if !slices.Equal(types, want) {
		t.Errorf("event types\n got %v\nwant %v", types, want)
	}
	if deltas.String() != Text(5) || final.OutputText() != Text(5) {
		t.Errorf("stream: deltas %q final %q", deltas.String(), final.OutputText())
	}
}

func TestAnthropicMessages(t *testing.T) {
	e := start(t, Config{})
	client := e.anthropic(anthropicKey)

	msg, err := client.Messages.New(t.Context(), messageParams("claude-sonnet-4-5"))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != Text(8) || msg.StopReason != anthropic.StopReasonEndTurn || msg.Usage.OutputTokens != 8 {
		t.Errorf("non-stream: %s", msg.RawJSON())
	}

	stream := client.Messages.NewStreaming(t.Context(), messageParams("claude-sonnet-4-5"))
	defer stream.Close()
	var acc anthropic.Message
	var types []string
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Text != Text(8) || acc.StopReason != anthropic.StopReasonEndTurn || acc.Usage.OutputTokens != 8 || acc.Usage.InputTokens == 0 {
		t.Errorf("accumulated: %+v", acc)
	}
	// The SDK swallows ping; everything else must be there in order.
	if types[0] != "message_start" || types[1] != "content_block_start" || types[len(types)-1] != "message_stop" || len(types) != 8+5 {
		t.Errorf("event types %v", types)
	}
}

func TestAnthropicCountTokensAndModels(t *testing.T) {
	e := start(t, Config{})
	client := e.anthropic(anthropicKey)
	count, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hello"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if count.InputTokens <= 0 {
		t.Errorf("input_tokens = %d", count.InputTokens)
	}
	page, err := client.Models.List(t.Context(), anthropic.ModelListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) == 0 || page.Data[0].Type != "model" || page.HasMore {
		t.Errorf("models: %s", page.RawJSON())
	}
	if got := e.fake.Requests()[1].Family; got != "anthropic" {
		t.Errorf("GET /v1/models with anthropic headers recorded as %q", got)
	}
}

func TestAnthropicRequiresVersion(t *testing.T) {
	e := start(t, Config{})
	resp, body := e.do(t, "POST", "/v1/messages", http.Header{"X-Api-Key": {anthropicKey}}, `{"model":"m","max_tokens":5,"messages":[]}`)
	var got struct {
		Type  string `json:"type"`
		Error struct{ Type, Message string }
	}
	_ = json.Unmarshal(body, &got)
	if resp.StatusCode != 400 || got.Type != "error" || got.Error.Type != "invalid_request_error" {
		t.Errorf("status %d body %s", resp.StatusCode, body)
	}
}

func TestGemini(t *testing.T) {
	e := start(t, Config{Tokens: 4})
	client := e.gemini(t, geminiKey)
	ctx := t.Context()

	res, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Text() != Text(4) || res.Candidates[0].FinishReason != genai.FinishReasonStop || res.UsageMetadata.CandidatesTokenCount != 4 {
		t.Errorf("generateContent: text %q %+v", res.Text(), res.Candidates[0])
	}

	var text strings.Builder
	var chunks int
	var last *genai.GenerateContentResponse
	for chunk, err := range client.Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text("hello"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		text.WriteString(chunk.Text())
		last = chunk
	}
	if text.String() != Text(4) || chunks != 4 || last.Candidates[0].FinishReason != genai.FinishReasonStop || last.UsageMetadata == nil {
		t.Errorf("stream: %d chunks, text %q, last %+v", chunks, text.String(), last)
	}
	if r := e.fake.Requests()[1]; !r.Stream || r.Model != "gemini-2.5-flash" || r.RawQuery != "alt=sse" {
		t.Errorf("stream request recorded as %+v", r)
	}

	emb, err := client.Models.EmbedContent(ctx, "gemini-embedding-001", genai.Text("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Embeddings) != 1 || len(emb.Embeddings[0].Values) != 768 {
		t.Errorf("embeddings: %+v", emb.Embeddings)
	}

	page, err := client.Models.List(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 || !strings.HasPrefix(page.Items[0].Name, "models/") {
		t.Errorf("models: %+v", page.Items)
	}
}

// TestGeminiArrayStream covers the framing genai does not use: without
// alt=sse the stream is one JSON array, delivered element by element.
func TestGeminiArrayStream(t *testing.T) {
	e := start(t, Config{Tokens: 3})
	for _, prefix := range []string{"/v1beta", "/v1"} {
		resp, body := e.do(t, "POST", prefix+"/models/gemini-2.5-flash:streamGenerateContent",
			http.Header{"X-Goog-Api-Key": {geminiKey}}, `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`)
		var chunks []struct {
			Candidates []struct {
				Content      struct{ Parts []struct{ Text string } }
				FinishReason string
			}
		}
		if err := json.Unmarshal(body, &chunks); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v: %s", prefix, resp.StatusCode, err, body)
		}
		var text strings.Builder
		for _, c := range chunks {
			text.WriteString(c.Candidates[0].Content.Parts[0].Text)
		}
		if len(chunks) != 3 || text.String() != Text(3) || chunks[2].Candidates[0].FinishReason != "STOP" {
			t.Errorf("%s: %s", prefix, body)
		}
	}
}

func TestGeminiKeyInURL(t *testing.T) {
	e := start(t, Config{})
	resp, body := e.do(t, "POST", "/v1beta/models/gemini-2.5-flash:generateContent?key="+geminiKey, nil, `{"contents":[{"parts":[{"text":"hi"}]}]}`)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "x-goog-api-key") || !strings.Contains(string(body), "INVALID_ARGUMENT") {
		t.Errorf("status %d body %s", resp.StatusCode, body)
	}
	if r := e.fake.Requests()[0]; r.Family != "gemini" || r.RawQuery != "key="+geminiKey {
		t.Errorf("recorded %q %q", r.Family, r.RawQuery)
	}
}

// call makes one non-streaming or streaming request through a family's SDK
// and returns the HTTP status of the error and its Retry-After (Gemini: the
// RetryInfo delay), or status 0 on success.
type sdkCall func(t *testing.T, e *env, ctx context.Context, key, model string, header http.Header, stream bool) (status int, retryAfter string, err error)

func openAICall(t *testing.T, e *env, ctx context.Context, key, model string, header http.Header, stream bool) (int, string, error) {
	client := e.openai(key)
	opts := headerOpts(header, option.WithHeader)
	var err error
	if stream {
		s := client.Chat.Completions.NewStreaming(ctx, chatParams(model), opts...)
		for s.Next() {
		}
		err = s.Err()
		s.Close()
	} else {
		_, err = client.Chat.Completions.New(ctx, chatParams(model), opts...)
	}
	var apierr *openai.Error
	if errors.As(err, &apierr) {
		return apierr.StatusCode, apierr.Response.Header.Get("Retry-After"), err
	}
	return 0, "", err
}

func anthropicCall(t *testing.T, e *env, ctx context.Context, key, model string, header http.Header, stream bool) (int, string, error) {
	client := e.anthropic(key)
	opts := headerOpts(header, aoption.WithHeader)
	var err error
	if stream {
		s := client.Messages.NewStreaming(ctx, messageParams(model), opts...)
		for s.Next() {
		}
		err = s.Err()
		s.Close()
	} else {
		_, err = client.Messages.New(ctx, messageParams(model), opts...)
	}
	var apierr *anthropic.Error
	if errors.As(err, &apierr) {
		return apierr.StatusCode, apierr.Response.Header.Get("Retry-After"), err
	}
	return 0, "", err
}

func geminiCall(t *testing.T, e *env, ctx context.Context, key, model string, header http.Header, stream bool) (int, string, error) {
	client := e.gemini(t, key)
	cfg := &genai.GenerateContentConfig{HTTPOptions: &genai.HTTPOptions{Headers: header}}
	var err error
	if stream {
		for _, err = range client.Models.GenerateContentStream(ctx, model, genai.Text("hello"), cfg) {
			if err != nil {
				break
			}
		}
	} else {
		_, err = client.Models.GenerateContent(ctx, model, genai.Text("hello"), cfg)
	}
	var apierr genai.APIError
	if errors.As(err, &apierr) {
		retry := ""
		for _, d := range apierr.Details {
			if s, ok := d["retryDelay"].(string); ok {
				retry = strings.TrimSuffix(s, "s")
			}
		}
		return apierr.Code, retry, err
	}
	return 0, "", err
}

func headerOpts[O any](h http.Header, with func(k, v string) O) []O {
	var out []O
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, with(k, v))
		}
	}
	return out
}

var families = []struct {
	name  string
	model string
	call  sdkCall
}{
	{"openai", "gpt-4o-mini", openAICall},
	{"anthropic", "claude-sonnet-4-5", anthropicCall},
	{"gemini", "gemini-2.5-flash", geminiCall},
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      Fault       // configured on the server
		header     http.Header // per request
		model      string      // overrides the family's model
		stream     bool
		wantStatus int
		wantRetry  string
	}{
		{name: "config 429", fault: Fault{Status: 429, RetryAfter: 2500 * time.Millisecond}, wantStatus: 429, wantRetry: "3"},
		{name: "config 500 stream", fault: Fault{Status: 500}, stream: true, wantStatus: 500},
		{name: "header 429", header: http.Header{"X-Fake-Fault": {"429"}, "X-Fake-Retry-After": {"7"}}, wantStatus: 429, wantRetry: "7"},
		{name: "header 401", header: http.Header{"X-Fake-Fault": {"401"}}, wantStatus: 401},
		{name: "model fail-529", model: "fail-529", wantStatus: 529},
		{name: "model fail-429 stream", model: "fail-429", stream: true, wantStatus: 429, wantRetry: "1"},
		{name: "model fail-500", model: "fail-500", wantStatus: 500},
	}
	for _, fam := range families {
		for _, tt := range tests {
			t.Run(fam.name+"/"+tt.name, func(t *testing.T) {
				e := start(t, Config{Fault: tt.fault})
				model := cmpOrString(tt.model, fam.model)
				status, retry, err := fam.call(t, e, t.Context(), testKeyFor(fam.name), model, tt.header, tt.stream)
				if status != tt.wantStatus || retry != tt.wantRetry {
					t.Errorf("status %d retry %q (err %v), want %d %q", status, retry, err, tt.wantStatus, tt.wantRetry)
				}
			})
		}
	}
}

func TestAnthropicOverloadedType(t *testing.T) {
	e := start(t, Config{Fault: Fault{Status: 529}})
	_, err := e.anthropic(anthropicKey).Messages.New(t.Context(), messageParams("claude-sonnet-4-5"))
	var apierr *anthropic.Error
	if !errors.As(err, &apierr) || apierr.Type() != anthropic.ErrorTypeOverloadedError {
		t.Fatalf("err = %v", err)
	}
}

func TestFaultCount(t *testing.T) {
	e := start(t, Config{Fault: Fault{Status: 500, Count: 2}})
	want := []int{500, 500, 0, 0}
	for i, w := range want {
		status, _, err := openAICall(t, e, t.Context(), openAIKey, "gpt-4o", nil, false)
		if status != w {
			t.Fatalf("request %d: status %d (%v), want %d", i, status, err, w)
		}
	}
	e.fake.SetFault(Fault{Status: 503, Count: 1})
	if status, _, _ := openAICall(t, e, t.Context(), openAIKey, "gpt-4o", nil, false); status != 503 {
		t.Errorf("after SetFault: status %d", status)
	}
}

func TestAuth(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			e := start(t, Config{})
			status, _, err := fam.call(t, e, t.Context(), "wrong-key", fam.model, nil, false)
			// Google answers a wrong key with 400 API_KEY_INVALID.
			if want := map[string]int{"gemini": 400}[fam.name]; status != cmp.Or(want, 401) {
				t.Errorf("wrong key: status %d (%v)", status, err)
			}
			if status, _, err := fam.call(t, e, t.Context(), testKeyFor(fam.name), fam.model, nil, false); status != 0 || err != nil {
				t.Fatalf("right key: status %d (%v)", status, err)
			}
			r := e.fake.Requests()[1]
			authHeader := map[string]string{"openai": "Authorization", "anthropic": "X-Api-Key", "gemini": "X-Goog-Api-Key"}[fam.name]
			if !strings.Contains(r.Header.Get(authHeader), testKeyFor(fam.name)) || !strings.Contains(string(r.Body), "hello") {
				t.Errorf("recorded %s=%q body %s", authHeader, r.Header.Get(authHeader), r.Body)
			}
			if r.Family != fam.name || r.Model != fam.model || r.Method != "POST" {
				t.Errorf("recorded %+v", r)
			}
		})
	}
}

func TestAnyKeyWhenUnset(t *testing.T) {
	e := start(t, Config{Keys: Keys{OpenAI: "only-this"}})
	if status, _, err := anthropicCall(t, e, t.Context(), "anything", "claude-sonnet-4-5", nil, false); status != 0 {
		t.Errorf("anthropic with any key: %d %v", status, err)
	}
	resp, _ := e.do(t, "GET", "/v1/models", nil, "")
	if resp.StatusCode != 401 {
		t.Errorf("missing key: status %d", resp.StatusCode)
	}
}

func TestNotFound(t *testing.T) {
	e := start(t, Config{})
	tests := []struct {
		path   string
		header http.Header
		want   string
	}{
		{"/v1/nope", http.Header{"Authorization": {"Bearer " + openAIKey}}, `"type":"invalid_request_error"`},
		{"/v1/messages/nope", http.Header{"X-Api-Key": {anthropicKey}, "Anthropic-Version": {"2023-06-01"}}, `"type":"not_found_error"`},
		{"/v1beta/nope", http.Header{"X-Goog-Api-Key": {geminiKey}}, `"status":"NOT_FOUND"`},
	}
	for _, tt := range tests {
		resp, body := e.do(t, "POST", tt.path, tt.header, "{}")
		if resp.StatusCode != 404 || !strings.Contains(string(body), tt.want) {
			t.Errorf("%s: status %d body %s", tt.path, resp.StatusCode, body)
		}
	}
}

func TestPacing(t *testing.T) {
	e := start(t, Config{Tokens: 10, Interval: 50 * time.Millisecond})
	begin := time.Now()
	stream := e.openai(openAIKey).Chat.Completions.NewStreaming(t.Context(), chatParams("gpt-4o"))
	defer stream.Close()
	var first time.Duration
	var pieces int
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			if pieces++; pieces == 1 {
				first = time.Since(begin)
			}
		}
	}
	total := time.Since(begin)
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if pieces != 10 || total < 9*50*time.Millisecond || first > total/2 {
		t.Errorf("%d pieces, first after %v, all after %v", pieces, first, total)
	}

	// X-Fake-Tokens and X-Fake-Interval-Ms override the configuration.
	begin = time.Now()
	res, err := e.openai(openAIKey).Chat.Completions.New(t.Context(), chatParams("gpt-4o"),
		option.WithHeader("X-Fake-Tokens", "3"), option.WithHeader("X-Fake-Interval-Ms", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Choices[0].Message.Content != Text(3) || time.Since(begin) > 400*time.Millisecond {
		t.Errorf("override: %q after %v", res.Choices[0].Message.Content, time.Since(begin))
	}
}

func TestHangRecordsCancel(t *testing.T) {
	tests := []struct {
		name   string
		fault  Fault
		header http.Header
		model  string
	}{
		{name: "config", fault: Fault{Hang: true}},
		{name: "header", header: http.Header{"X-Fake-Fault": {"hang"}}},
		{name: "model", model: "hang"},
	}
	for _, fam := range families {
		for _, tt := range tests {
			t.Run(fam.name+"/"+tt.name, func(t *testing.T) {
				e := start(t, Config{Fault: tt.fault})
				ctx, cancel := context.WithCancel(t.Context())
				errc := make(chan error, 1)
				go func() {
					_, _, err := fam.call(t, e, ctx, testKeyFor(fam.name), cmpOrString(tt.model, fam.model), tt.header, false)
					errc <- err
				}()
				reqs, err := e.fake.WaitRequests(t.Context(), 1)
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-reqs[0].Done:
					t.Fatal("hanging request finished before the client left")
				case <-time.After(50 * time.Millisecond):
				}
				cancel()
				if err := <-errc; !errors.Is(err, context.Canceled) {
					t.Errorf("client error = %v", err)
				}
				assertCanceled(t, reqs[0])
			})
		}
	}
}

func TestMidStreamCancel(t *testing.T) {
	e := start(t, Config{Tokens: 100, Interval: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream := e.anthropic(anthropicKey).Messages.NewStreaming(ctx, messageParams("claude-sonnet-4-5"))
	for stream.Next() {
		if stream.Current().Type == "content_block_delta" {
			break
		}
	}
	cancel()
	stream.Close()
	assertCanceled(t, e.fake.Requests()[0])
}

func TestCompletedIsNotCanceled(t *testing.T) {
	e := start(t, Config{})
	if _, err := e.openai(openAIKey).Chat.Completions.New(t.Context(), chatParams("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	r := e.fake.Requests()[0]
	<-r.Done
	if _, canceled := r.Canceled(); canceled {
		t.Error("answered request reported as canceled")
	}
	e.fake.Reset()
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("after Reset: %d requests", n)
	}
}

func assertCanceled(t *testing.T, r Request) {
	t.Helper()
	select {
	case <-r.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not return after the client left")
	}
	at, canceled := r.Canceled()
	if !canceled || at.Before(r.Received) {
		t.Errorf("Canceled() = %v, %v (received %v)", at, canceled, r.Received)
	}
}

func TestLargeBody(t *testing.T) {
	e := start(t, Config{})
	image := strings.Repeat("A", 20<<20) // a 20 MB base64 "image"
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + image + `"}}]}]}`
	resp, _ := e.do(t, "POST", "/v1/chat/completions", http.Header{"Authorization": {"Bearer " + openAIKey}}, body)
	if resp.StatusCode != 200 || len(e.fake.Requests()[0].Body) != len(body) {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestListenAndServe(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	addrc := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() { errc <- ListenAndServe(ctx, "127.0.0.1:0", Config{Tokens: 2}, func(a net.Addr) { addrc <- a }) }()
	addr := <-addrc

	// A hanging request must not keep the server from shutting down.
	hung := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+addr.String()+"/v1/chat/completions", strings.NewReader(`{"model":"hang"}`))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		hung <- err
	}()

	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nContent-Length: 17\r\nConnection: close\r\n\r\n{\"model\":\"gpt-x\"}")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"content":"tok0 tok1"`) {
		t.Errorf("status %d body %s", resp.StatusCode, b)
	}

	// Unencrypted HTTP/2 with prior knowledge, streaming.
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: protocols}}
	defer h2c.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+addr.String()+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":9,"stream":true}`))
	req.Header = http.Header{"X-Api-Key": {"k"}, "Anthropic-Version": {"2023-06-01"}}
	resp, err = h2c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || !strings.HasSuffix(string(b), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Errorf("h2c: proto %s body %s", resp.Proto, b)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("ListenAndServe = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ListenAndServe did not return")
	}
	<-hung
	http.DefaultClient.CloseIdleConnections()
}

// TestHTTP2TLS drives the fake over TLS+HTTP/2 (as behind the relay) and
// checks streaming and mid-stream cancellation there too.
func TestHTTP2TLS(t *testing.T) {
	fake := New(Config{Keys: testKeys, Tokens: 50, Interval: 20 * time.Millisecond})
	srv := httptest.NewUnstartedServer(fake)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	e := &env{fake: fake, srv: srv}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream := e.openai(openAIKey).Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o"))
	var pieces int
	for stream.Next() {
		if c := stream.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			if pieces++; pieces == 3 {
				break
			}
		}
	}
	if err := stream.Err(); err != nil || pieces != 3 {
		t.Fatalf("pieces %d, err %v", pieces, err)
	}
	cancel()
	stream.Close()
	assertCanceled(t, fake.Requests()[0])
}

func testKeyFor(family string) string {
	return map[string]string{"openai": openAIKey, "anthropic": anthropicKey, "gemini": geminiKey}[family]
}

func cmpOrString(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}

// TestPacingIsAbsolute: piece i is due i intervals after the first, so a
// write that came late does not push the later pieces back (a model's clock
// does not wait for the proxy). On a clock that moves only when the stream
// sleeps or writes, the second piece's write takes three intervals; the
// stream then sends the next three at once (the last of them on time) and
// waits again only for the sixth, where sleeping an interval after every
// write would have sent every later piece three intervals late.
func TestPacingIsAbsolute(t *testing.T) {
	const interval = 20 * time.Millisecond
	now := time.Unix(1000, 0)
	var waits []time.Duration
	c := &call{ctx: t.Context(), interval: interval,
		now: func() time.Time { return now },
		pause: func(d time.Duration) bool {
			waits = append(waits, max(d, 0))
			now = now.Add(max(d, 0))
			return true
		}}
	s := &streamer{c: c}
	var sent []time.Duration
	ok := s.each(completion{pieces: []string{"a", "b", "c", "d", "e", "f"}}, func(i int, _ string) bool {
		sent = append(sent, now.Sub(time.Unix(1000, 0)))
		if i == 1 {
			now = now.Add(3 * interval) // a slow write
		}
		return true
	})
	want := []time.Duration{0, interval, 4 * interval, 4 * interval, 4 * interval, 5 * interval}
	if !ok || !slices.Equal(sent, want) {
		t.Errorf("pieces sent at %v, want %v (waits %v)", sent, want, waits)
	}
}
