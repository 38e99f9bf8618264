package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"go.uber.org/zap"
	"google.golang.org/genai"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/edge/guard"
)

// echoUpstream stands in for the provider in the guard tests: it records
// every request body and answers, in the family's format, whole or
// streamed, with the placeholders it found in the prompt ("echo: ⟦PHONE_1⟧
// / ..."), cut into pieces of three runes so placeholders cross events.
// Asked with tools, OpenAI chat answers with a tool call whose arguments
// carry the placeholders.
type echoUpstream struct {
	mu     sync.Mutex
	bodies []string
}

var placeholderRE = regexp.MustCompile(`⟦[A-Z0-9_]+⟧`)

func (u *echoUpstream) Bodies() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...)
}

func (u *echoUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.bodies = append(u.bodies, string(body))
	u.mu.Unlock()
	var req struct {
		Stream bool            `json:"stream"`
		Tools  json.RawMessage `json:"tools"`
	}
	_ = json.Unmarshal(body, &req)
	text := "echo: " + strings.Join(placeholderRE.FindAllString(string(body), -1), " / ")
	var pieces []string
	for rs := []rune(text); len(rs) > 0; rs = rs[min(3, len(rs)):] {
		pieces = append(pieces, string(rs[:min(3, len(rs))]))
	}
	stream := req.Stream || strings.Contains(r.URL.Path, ":streamGenerateContent")
	switch {
	case strings.HasSuffix(r.URL.Path, "/chat/completions"):
		echoOpenAI(w, stream, len(req.Tools) > 0, text, pieces)
	case strings.HasSuffix(r.URL.Path, "/messages"):
		echoAnthropic(w, stream, text, pieces)
	default:
		echoGemini(w, stream, text, pieces)
	}
}

func sseEvents(w http.ResponseWriter, events []string) {
	w.Header().Set("Content-Type", "text/event-stream")
	for _, ev := range events {
		_, _ = io.WriteString(w, ev+"\n\n")
		w.(http.Flusher).Flush()
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func echoOpenAI(w http.ResponseWriter, stream, tool bool, text string, pieces []string) {
	const head = `{"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":`
	if !stream {
		msg := `{"role":"assistant","content":` + jsonString(text) + `}`
		if tool {
			msg = `{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"dial","arguments":` +
				jsonString(`{"said":`+jsonString(text)+`}`) + `}}]}`
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-echo","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":`+
			msg+`,"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`)
		return
	}
	var evs []string
	if tool {
		args := `{"said":` + jsonString(text) + `}`
		evs = append(evs, "data: "+head+`{"role":"assistant","tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"dial","arguments":""}}]},"finish_reason":null}]}`)
		for rs := []rune(args); len(rs) > 0; rs = rs[min(3, len(rs)):] {
			evs = append(evs, "data: "+head+`{"tool_calls":[{"index":0,"function":{"arguments":`+jsonString(string(rs[:min(3, len(rs))]))+`}}]},"finish_reason":null}]}`)
		}
	} else {
		for _, p := range pieces {
			evs = append(evs, "data: "+head+`{"content":`+jsonString(p)+`},"finish_reason":null}]}`)
		}
	}
	evs = append(evs, "data: "+head+`{},"finish_reason":"stop"}]}`,
		`data: {"id":"chatcmpl-echo","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`,
		"data: [DONE]")
	sseEvents(w, evs)
}

func echoAnthropic(w http.ResponseWriter, stream bool, text string, pieces []string) {
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"msg_echo","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":`+
			jsonString(text)+`}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":5}}`)
		return
	}
	evs := []string{`event: message_start` + "\n" + `data: {"type":"message_start","message":{"id":"msg_echo","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":0}}}`,
		"event: content_block_start\n" + `data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`}
	for k, p := range pieces {
		evs = append(evs, "event: content_block_delta\n"+`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+jsonString(p)+`}}`)
		if k == 2 {
			evs = append(evs, "event: ping\n"+`data: {"type": "ping"}`)
		}
	}
	evs = append(evs, "event: content_block_stop\n"+`data: {"type":"content_block_stop","index":0}`,
		"event: message_delta\n"+`data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}`,
		"event: message_stop\n"+`data: {"type":"message_stop"}`)
	sseEvents(w, evs)
}

func echoGemini(w http.ResponseWriter, stream bool, text string, pieces []string) {
	chunk := func(t, tail string) string {
		return `{"candidates":[{"content":{"role":"model","parts":[{"text":` + jsonString(t) + `}]},"index":0` + tail + `}]` +
			`,"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":5,"totalTokenCount":10},"modelVersion":"gemini-2.5-flash"}`
	}
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chunk(text, `,"finishReason":"STOP"`))
		return
	}
	var evs []string
	for k, p := range pieces {
		tail := ""
		if k == len(pieces)-1 {
			tail = `,"finishReason":"STOP"`
		}
		evs = append(evs, "data: "+chunk(p, tail))
	}
	sseEvents(w, evs)
}

// The personal data of the guard tests, and what the client must get back.
const (
	guardPhone  = "13812345678"
	guardID     = "110101199003071233"
	guardEmail  = "li.si@example.com"
	guardPrompt = "My phone is " + guardPhone + ", my ID " + guardID + ", mail " + guardEmail + "; phone again " + guardPhone
	guardEcho   = "echo: " + guardPhone + " / " + guardID + " / ⟦REDACTED_EMAIL⟧ / " + guardPhone
)

// The masked values join the secret scan: no log line and no audit
// record of any test may show them.
func init() {
	addSecret(guardPhone, "a phone number the border guard masks")
	addSecret(guardID, "an ID number the border guard masks")
	addSecret(guardEmail, "an e-mail address the border guard redacts")
}

// guardStack is a stack whose provider is an echoUpstream and whose edge
// runs the border guard cfg; with domestic, a second relay in front of its
// own echoUpstream is the edge's domestic group.
func guardStack(t *testing.T, cfg *guard.Config, domestic *echoUpstream) (*stack, *echoUpstream) {
	up := &echoUpstream{}
	s := newStack(t, stackOptions{
		upstream: func(http.Handler) http.Handler { return up },
		edgeEdit: func(f *edgecmd.File) {
			f.Guard = cfg
			if domestic != nil {
				addr := startDomesticRelay(t, filepath.Dir(f.TLS.Cert), domestic)
				f.Tunnel.Relays = append(f.Tunnel.Relays, edgecmd.RelayFile{Address: addr, Transport: "ws", ServerName: "localhost", Domestic: true})
			}
		},
	})
	return s, up
}

// startDomesticRelay runs a second relay, with the stack's certificates,
// in front of its own provider, and returns its WebSocket address.
func startDomesticRelay(t *testing.T, dir string, up http.Handler) string {
	srvUp := httptest.NewServer(up)
	t.Cleanup(srvUp.Close)
	f := (&stack{dir: dir, fakeURL: srvUp.URL}).relayFile("127.0.0.1:0")
	_, socks := serveRelay(t, f, zap.NewNop())
	return socks.TCP.Addr().String()
}

var guardConfig = &guard.Config{
	Detectors: []string{"cn_mobile", "cn_id_card", "bank_card", "email", "ipv4", "ipv6", "passport_cn"},
	Actions:   map[string]guard.Action{"email": guard.Redact},
}

// guardCalls are the SDK calls of the guard tests, each sending prompt
// and returning the text the client got.
var guardCalls = []struct {
	name string
	call func(ctx context.Context, t *testing.T, s *stack, prompt string) (string, error)
}{
	{"openai chat", func(ctx context.Context, _ *testing.T, s *stack, prompt string) (string, error) {
		resp, err := s.openai().Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}})
		if err != nil {
			return "", err
		}
		return resp.Choices[0].Message.Content, nil
	}},
	{"openai chat stream", func(ctx context.Context, _ *testing.T, s *stack, prompt string) (string, error) {
		stream := s.openai().Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)}})
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			for _, c := range stream.Current().Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		return text.String(), stream.Err()
	}},
	{"openai chat stream tool call", func(ctx context.Context, _ *testing.T, s *stack, prompt string) (string, error) {
		stream := s.openai().Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
			Tools:    []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "dial"})}})
		defer stream.Close()
		var args strings.Builder
		for stream.Next() {
			for _, c := range stream.Current().Choices {
				for _, tc := range c.Delta.ToolCalls {
					args.WriteString(tc.Function.Arguments)
				}
			}
		}
		var v struct{ Said string }
		if err := stream.Err(); err != nil {
			return "", err
		}
		if err := json.Unmarshal([]byte(args.String()), &v); err != nil {
			return "", fmt.Errorf("tool-call arguments %q: %w", args.String(), err)
		}
		return v.Said, nil
	}},
	{"anthropic messages", func(ctx context.Context, _ *testing.T, s *stack, prompt string) (string, error) {
		p := messageParams
		p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))}
		msg, err := s.anthropic().Messages.New(ctx, p)
		if err != nil {
			return "", err
		}
		return msg.Content[0].Text, nil
	}},
	{"anthropic messages stream", func(ctx context.Context, _ *testing.T, s *stack, prompt string) (string, error) {
		p := messageParams
		p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))}
		return anthropicStreamText(ctx, s, p)
	}},
	{"gemini generateContent", func(ctx context.Context, t *testing.T, s *stack, prompt string) (string, error) {
		resp, err := s.gemini(t).Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text(prompt), nil)
		if err != nil {
			return "", err
		}
		return resp.Text(), nil
	}},
	{"gemini streamGenerateContent", func(ctx context.Context, t *testing.T, s *stack, prompt string) (string, error) {
		var text strings.Builder
		for resp, err := range s.gemini(t).Models.GenerateContentStream(ctx, "gemini-2.5-flash", genai.Text(prompt), nil) {
			if err != nil {
				return "", err
			}
			text.WriteString(resp.Text())
		}
		return text.String(), nil
	}},
}

// TestGuardMasksAndRestores: with the official SDKs, whole and streamed,
// in every family: the provider never sees the phone number, ID number or
// e-mail address, and the client gets the masked values back in the
// answer (the redacted e-mail stays redacted), tool-call arguments
// included.
func TestGuardMasksAndRestores(t *testing.T) {
	s, up := guardStack(t, guardConfig, nil)
	for _, tc := range guardCalls {
		t.Run(tc.name, func(t *testing.T) {
			n := len(up.Bodies())
			got, err := tc.call(testCtx(t, 20*time.Second), t, s, guardPrompt)
			if err != nil {
				t.Fatalf("SDK call failed: %v", err)
			}
			if got != guardEcho {
				t.Errorf("client got %q; want %q", got, guardEcho)
			}
			bodies := up.Bodies()[n:]
			if len(bodies) != 1 {
				t.Fatalf("provider saw %d requests; want 1", len(bodies))
			}
			for _, v := range []string{guardPhone, guardID, guardEmail} {
				if strings.Contains(bodies[0], v) {
					t.Errorf("the provider saw %q: %s", v, bodies[0])
				}
			}
			if !strings.Contains(bodies[0], "⟦PHONE_1⟧") || strings.Contains(bodies[0], "⟦PHONE_2⟧") {
				t.Errorf("the same number should be one placeholder: %s", bodies[0])
			}
		})
	}
	checkGuardEvidence(t, s)
}

// checkGuardEvidence: the audit log and the metrics count the finds per
// category and action, and neither they nor the edge's log show a value.
func checkGuardEvidence(t *testing.T, s *stack) {
	audit, err := os.ReadFile(s.path("audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), `{"category":"cn_mobile","action":"mask","n":2}`) ||
		!strings.Contains(string(audit), `{"category":"email","action":"redact","n":1}`) {
		t.Errorf("audit records lack the guard's counts:\n%s", audit)
	}
	metrics := scrape(t, s.edgeAdmin+"/metrics")
	if !strings.Contains(metrics, `strait_guard_finds_total{action="mask",category="cn_id_card"}`) {
		t.Error("metrics lack strait_guard_finds_total")
	}
	var logs strings.Builder
	for _, e := range s.edgeLogs.All() {
		fmt.Fprintf(&logs, "%s %v\n", e.Message, e.ContextMap())
	}
	for _, v := range []string{guardPhone, guardID, guardEmail} {
		for name, text := range map[string]string{"audit log": string(audit), "metrics": metrics, "edge log": logs.String()} {
			if strings.Contains(text, v) {
				t.Errorf("the %s shows %q", name, v)
			}
		}
	}
}

func scrape(t *testing.T, url string) string {
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestGuardBlocks: a blocked word is refused before it crosses, with a 400
// in each family's format naming the category and not the text.
func TestGuardBlocks(t *testing.T) {
	words := writeFile(t, t.TempDir(), "words.txt", "绝密\tstate_secret\n")
	s, up := guardStack(t, &guard.Config{Words: guard.WordsFile{File: words}}, nil)
	for _, tc := range guardCalls {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.call(testCtx(t, 20*time.Second), t, s, "这份文件是绝 密的")
			status, msg := apiErrorOf(err)
			if status != 400 || !strings.Contains(msg, "state_secret") || strings.Contains(msg, "绝") {
				t.Fatalf("got %v; want the family's 400 naming state_secret only", err)
			}
		})
	}
	if n := len(up.Bodies()); n != 0 {
		t.Fatalf("the provider saw %d blocked requests", n)
	}
}

// apiErrorOf reads status and message from any of the three SDKs' errors.
func apiErrorOf(err error) (int, string) {
	var oe *openai.Error
	var ae *anthropic.Error
	var ge genai.APIError
	switch {
	case errors.As(err, &oe):
		return oe.StatusCode, oe.Message
	case errors.As(err, &ae):
		return ae.StatusCode, ae.Error()
	case errors.As(err, &ge):
		return ge.Code, ge.Message
	}
	return 0, fmt.Sprint(err)
}

// TestGuardKeepsHome: a request with an employee number goes, unchanged,
// to the domestic relay group and its model; the relay abroad sees
// nothing. Without a domestic group such a request is refused clearly.
func TestGuardKeepsHome(t *testing.T) {
	cfg := &guard.Config{Detectors: []string{"cn_mobile"}, Custom: []guard.CustomPattern{{Name: "employee_id", Pattern: `EMP-\d{6}`}},
		Actions: map[string]guard.Action{"employee_id": guard.KeepHome}}
	home := &echoUpstream{}
	s, abroad := guardStack(t, cfg, home)
	ctx := testCtx(t, 20*time.Second)
	chat := guardCalls[0].call
	if _, err := chat(ctx, t, s, "EMP-123456 called "+guardPhone); err != nil {
		t.Fatal(err)
	}
	if _, err := chat(ctx, t, s, "call "+guardPhone); err != nil {
		t.Fatal(err)
	}
	if b := home.Bodies(); len(b) != 1 || !strings.Contains(b[0], "EMP-123456 called "+guardPhone) {
		t.Fatalf("domestic provider saw %q; want the first request, unchanged", b)
	}
	if b := abroad.Bodies(); len(b) != 1 || strings.Contains(b[0], "EMP-") || strings.Contains(b[0], guardPhone) {
		t.Fatalf("provider abroad saw %q; want only the second request, masked", b)
	}
	// The domestic group's sessions are in the edge's metrics beside the
	// sessions abroad, one relay each.
	_, page := adminGet(t, s.edgeAdmin, "/metrics")
	relays := map[string]bool{}
	for _, line := range strings.Split(page, "\n") {
		if rest, ok := strings.CutPrefix(line, `strait_tunnel_sessions{relay="`); ok {
			relays[rest[:strings.IndexByte(rest, '"')]] = true
		}
	}
	if len(relays) != 2 {
		t.Errorf("strait_tunnel_sessions covers relays %v; want the one abroad and the domestic one", relays)
	}

	s2, abroad2 := guardStack(t, cfg, nil)
	_, err := chat(testCtx(t, 20*time.Second), t, s2, "EMP-123456")
	if status, msg := apiErrorOf(err); status != 403 || !strings.Contains(msg, "domestic") {
		t.Fatalf("without a domestic group: %v", err)
	}
	if len(abroad2.Bodies()) != 0 {
		t.Fatal("a keep_home request crossed the border")
	}
}

// TestGuardCutsAnswers: with output_words: cut, an answer holding a listed
// word ends before it, whole (the family's 400) or streamed (the family's
// in-band error), and the word never reaches the client.
func TestGuardCutsAnswers(t *testing.T) {
	words := writeFile(t, t.TempDir(), "words.txt", "echo\tleak\n")
	s, _ := guardStack(t, &guard.Config{Words: guard.WordsFile{File: words}, Actions: map[string]guard.Action{"leak": guard.Flag},
		OutputWords: guard.OutputCut}, nil)
	for _, tc := range guardCalls {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call(testCtx(t, 20*time.Second), t, s, "say something")
			if err == nil {
				t.Fatalf("got %q and no error", got)
			}
			if _, msg := apiErrorOf(err); strings.Contains(got, "echo") || !strings.Contains(msg+" "+err.Error(), "cut this answer") {
				t.Fatalf("got %q, %v; want the guard's error and no word", got, err)
			}
		})
	}
	audit, err := os.ReadFile(s.path("audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), `"guard_output":{"leak":1}`) {
		t.Errorf("audit records lack the answer's word count:\n%s", audit)
	}
}
