package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
)

// rawStream posts an OpenAI streaming chat through the edge (to base, e.g.
// "/v1" or "/deepseek/v1") with the given fake headers, and returns the
// status and the raw body as the client received it.
func rawStream(t *testing.T, s *stack, base string, hdr map[string]string) (int, string) {
	return rawPost(t, s, base+"/chat/completions", `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}`, hdr)
}

func rawPost(t *testing.T, s *stack, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	status, _, b := rawDo(t, s, "POST", path, body, hdr)
	return status, b
}

// noKeysUpstream checks every request the fake received carried the
// provider key only in its header: no client key anywhere, no key in a URL.
func noKeysUpstream(t *testing.T, s *stack) {
	t.Helper()
	for _, r := range s.fake.Requests() {
		checkUpstream(t, r, r.Family, r.Path)
	}
}

// TestUpstreamFailuresSeenBySDKs: what a client sees of the relay's retry
// and stream-ending rules, with the official SDKs through the whole stack.
func TestUpstreamFailuresSeenBySDKs(t *testing.T) {
	s := newStack(t, stackOptions{})
	t.Run("gave up after attempts", func(t *testing.T) {
		s.fake.Reset()
		s.fake.SetFault(fakeprovider.Fault{Status: 503})
		defer s.fake.SetFault(fakeprovider.Fault{})
		_, err := s.openai().Chat.Completions.New(testCtx(t, 20*time.Second), chatParams)
		wantOpenAIError(t, err, 503, "gave up after 3 attempts")
		if n := len(s.fake.Requests()); n != 3 {
			t.Fatalf("%d upstream attempts, want 3", n)
		}
	})
	t.Run("retried then succeeded", func(t *testing.T) {
		s.fake.Reset()
		s.fake.SetFault(fakeprovider.Fault{Status: 529, Count: 2})
		msg, err := s.anthropic().Messages.New(testCtx(t, 20*time.Second), messageParams)
		if err != nil || msg.Content[0].Text != fakeprovider.Text(8) {
			t.Fatalf("err %v, message %+v", err, msg)
		}
	})
	t.Run("mid-stream failure: in-band error, no [DONE]", func(t *testing.T) {
		s.fake.Reset()
		status, body := rawStream(t, s, "/v1", map[string]string{"X-Fake-Break-After": "3"})
		if status != 200 || strings.Contains(body, "[DONE]") || !strings.Contains(body, `data: {"error":{"message":"Strait: the response stream broke off`) {
			t.Fatalf("status %d, body:\n%s", status, body)
		}
		if n := len(s.fake.Requests()); n != 1 {
			t.Fatalf("the provider got %d requests; a started stream must not be retried", n)
		}
		stream := s.openai(option.WithHeader("X-Fake-Break-After", "3")).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
		defer stream.Close()
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "broke off") {
			t.Fatalf("SDK stream error = %v, want the in-band error", err)
		}
	})
	t.Run("5 MB single SSE line", func(t *testing.T) {
		const size = 5 << 20
		stream := s.openai(option.WithHeader("X-Fake-Piece-Bytes", fmt.Sprint(size))).Chat.Completions.NewStreaming(testCtx(t, 30*time.Second), chatParams)
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			if c := stream.Current(); len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		want := strings.Repeat("x", size) + strings.TrimPrefix(fakeprovider.Text(8), "tok0")
		if err := stream.Err(); err != nil || text.String() != want {
			t.Fatalf("err %v; got %d bytes of text, want %d", err, text.Len(), len(want))
		}
	})
	t.Run("passthrough is byte-exact", func(t *testing.T) {
		s.fake.Reset()
		body := "{\n  \"model\": \"claude-sonnet-4-5\",  \"max_tokens\": 9, \"x_unknown_field\": {\"keep\": [1, 2.50, \"\\u00e9\"]},\n" +
			"  \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]\n}\n"
		status, _ := rawPost(t, s, "/v1/messages", body, map[string]string{"Anthropic-Version": "2023-06-01",
			"Anthropic-Beta": "prompt-caching-2024-07-31,output-128k-2025-02-19"})
		got := s.fake.Requests()
		if status != 200 || len(got) != 1 || string(got[0].Body) != body ||
			got[0].Header.Get("Anthropic-Beta") != "prompt-caching-2024-07-31,output-128k-2025-02-19" {
			t.Fatalf("status %d; upstream body %q, anthropic-beta %q", status, got[0].Body, got[0].Header.Get("Anthropic-Beta"))
		}
	})
	noKeysUpstream(t, s)
	_, metrics := adminGet(t, s.relayAdmin, "/metrics")
	fp := upstream.NewKey(providerKeys.OpenAI).Fingerprint()
	for _, w := range []string{
		`strait_relay_upstream_attempts_total{provider="openai",result="status_503"} 3`,
		`strait_relay_upstream_attempts_total{provider="anthropic",result="status_529"} 2`,
		`strait_relay_streams_ended_total{reason="upstream_error"} 3`, // gave up, and two mid-stream breaks
		`strait_relay_streams_ended_total{reason="completed"}`,
		`strait_relay_upstream_key_state{key="` + fp + `",provider="openai",state="healthy"} 1`,
		`strait_relay_upstream_key_state{key="` + fp + `",provider="openai",state="cooling"} 0`,
	} {
		if !strings.Contains(metrics, w) {
			t.Errorf("relay /metrics lacks %s", w)
		}
	}
}

// silenceStack has pings every 100 ms; the openai provider tolerates 5 s of
// silence, deepseek (same fake, /deepseek/v1) only 500 ms.
func silenceStack(t *testing.T, ping time.Duration) *stack {
	return newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.Timeouts = relaycmd.TimeoutsFile{Ping: ping, Idle: 5 * time.Minute}
		for i := range f.Providers {
			if f.Providers[i].Name == "deepseek" {
				f.Providers[i].Timeouts.Idle = 500 * time.Millisecond
			}
		}
	}})
}

// TestSilentStreams: a provider silent between events for longer than any
// middlebox would wait keeps the client's stream alive with keep-alives in
// its dialect (": ping" for OpenAI, "event: ping" for Anthropic), and the
// stream completes; silence past the idle limit ends the stream with a
// clear in-band error, never [DONE]. STRAIT_LONG_SILENCE=1 makes the
// silence 60 s with the default 15 s pings.
func TestSilentStreams(t *testing.T) {
	silence, ping := 2*time.Second, 100*time.Millisecond
	if os.Getenv("STRAIT_LONG_SILENCE") == "1" {
		silence, ping = 60*time.Second, 15*time.Second
	}
	s := silenceStack(t, ping)
	gap := map[string]string{"X-Fake-Tokens": "2", "X-Fake-Interval-Ms": fmt.Sprint(silence.Milliseconds())}
	t.Run("openai survives", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		status, body := rawStream(t, s, "/v1", gap)
		pings := strings.Count(body, ": ping\n\n")
		t.Logf("%v of silence: %d keep-alives", time.Since(start).Round(time.Millisecond), pings)
		if status != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") || pings < int(silence/ping)/2 {
			t.Fatalf("status %d, %d pings, body:\n%s", status, pings, body)
		}
		stream := s.openai(option.WithHeader("X-Fake-Tokens", "2"), option.WithHeader("X-Fake-Interval-Ms", gap["X-Fake-Interval-Ms"])).
			Chat.Completions.NewStreaming(testCtx(t, silence+30*time.Second), chatParams)
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			if c := stream.Current(); len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if err := stream.Err(); err != nil || text.String() != fakeprovider.Text(2) {
			t.Fatalf("SDK through the pings: err %v, text %q", err, text.String())
		}
	})
	t.Run("anthropic survives", func(t *testing.T) {
		t.Parallel()
		opts := append(anthropicOpts(s, clientKey), anthropicopt.WithHeader("X-Fake-Tokens", "2"),
			anthropicopt.WithHeader("X-Fake-Interval-Ms", gap["X-Fake-Interval-Ms"]))
		c := anthropic.NewClient(opts...)
		stream := c.Messages.NewStreaming(testCtx(t, silence+30*time.Second), messageParams)
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			if ev, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				text.WriteString(ev.Delta.Text)
			}
		}
		if err := stream.Err(); err != nil || text.String() != fakeprovider.Text(2) {
			t.Fatalf("err %v, text %q", err, text.String())
		}
		// The SDK hides ping events; the raw stream shows them.
		status, body := rawPost(t, s, "/v1/messages", `{"model":"claude-x","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			map[string]string{"Anthropic-Version": "2023-06-01", "X-Fake-Tokens": "2", "X-Fake-Interval-Ms": gap["X-Fake-Interval-Ms"]})
		pings := strings.Count(body, "event: ping\ndata: {\"type\": \"ping\"}\n\n")
		if status != 200 || pings < int(silence/ping)/2 || !strings.Contains(body, "event: message_stop") {
			t.Fatalf("status %d, %d pings, body:\n%s", status, pings, body)
		}
	})
	t.Run("gemini survives", func(t *testing.T) {
		t.Parallel()
		cfg := &genai.GenerateContentConfig{HTTPOptions: &genai.HTTPOptions{Headers: http.Header{
			"X-Fake-Tokens": {"2"}, "X-Fake-Interval-Ms": {gap["X-Fake-Interval-Ms"]}}}}
		var text strings.Builder
		for resp, err := range s.gemini(t).Models.GenerateContentStream(testCtx(t, silence+30*time.Second), "gemini-2.5-flash", genai.Text("hi"), cfg) {
			if err != nil {
				t.Fatalf("genai stream through the keep-alives: %v", err)
			}
			text.WriteString(resp.Text())
		}
		if text.String() != fakeprovider.Text(2) {
			t.Fatalf("text %q", text.String())
		}
	})
	t.Run("past the idle limit", func(t *testing.T) {
		t.Parallel()
		status, body := rawStream(t, s, "/deepseek/v1", map[string]string{"X-Fake-Tokens": "2", "X-Fake-Interval-Ms": "1500"})
		if status != 200 || strings.Contains(body, "[DONE]") || !strings.Contains(body, "the provider sent nothing for 500ms (idle limit)") {
			t.Fatalf("status %d, body:\n%s", status, body)
		}
		c := s.openai(option.WithBaseURL(s.edgeURL+"/deepseek/v1/"), option.WithHeader("X-Fake-Tokens", "2"),
			option.WithHeader("X-Fake-Interval-Ms", "1500"))
		stream := c.Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
		defer stream.Close()
		for stream.Next() {
		}
		if err := stream.Err(); err == nil || !strings.Contains(err.Error(), "the provider sent nothing for 500ms (idle limit)") {
			t.Fatalf("SDK error = %v, want the idle-limit error", err)
		}
	})
}
