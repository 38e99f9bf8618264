package dispatch

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
)

// chatN is a Chat Completions request for n choices of claude-x (routed to
// the Anthropic provider, which makes one choice per call).
func chatN(n int, stream, usage bool) string {
	s := `{"model":"claude-x","n":` + string(rune('0'+n)) + `,"messages":[{"role":"user","content":"hi"}]`
	if stream {
		s += `,"stream":true`
	}
	if usage {
		s += `,"stream_options":{"include_usage":true}`
	}
	return s + "}"
}

type fanChoice struct {
	Index        int         `json:"index"`
	Message      chatMessage `json:"message"`
	Delta        chatMessage `json:"delta"`
	FinishReason *string     `json:"finish_reason"`
}

type chatMessage struct {
	Content string `json:"content"`
}

type fanBody struct {
	ID      string            `json:"id"`
	Choices []fanChoice       `json:"choices"`
	Usage   *llmapi.ChatUsage `json:"usage"`
	Error   json.RawMessage   `json:"error"`
}

// oneCallUsage is the usage of the same request with n = 1.
func oneCallUsage(t *testing.T, r *rig, stream bool) llmapi.ChatUsage {
	t.Helper()
	res := r.do("openai", "/v1/chat/completions", nil, chatN(1, stream, stream))
	body := res.body
	if stream { // the usage chunk is the last before [DONE]
		events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
		body = []byte(strings.TrimPrefix(events[len(events)-2], "data: "))
	}
	var b fanBody
	if res.status != 200 || json.Unmarshal(body, &b) != nil || b.Usage == nil {
		t.Fatalf("n=1: %d %s", res.status, res.body)
	}
	return *b.Usage
}

// TestFanOutWhole: n = 3 to Anthropic is three calls of one choice each;
// the client gets one Chat completion with choices 0, 1 and 2, each the
// whole text, and the usage of the three calls summed.
func TestFanOutWhole(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	one := oneCallUsage(t, r, false)
	res := r.do("openai", "/v1/chat/completions", nil, chatN(3, false, false))
	var b fanBody
	if res.status != 200 || res.end.Code != proto.CodeOK || json.Unmarshal(res.body, &b) != nil {
		t.Fatalf("status %d end %v body %s", res.status, res.end, res.body)
	}
	if len(b.Choices) != 3 {
		t.Fatalf("%d choices: %s", len(b.Choices), res.body)
	}
	for i, c := range b.Choices {
		if c.Index != i || c.Message.Content != fakeprovider.Text(8) || c.FinishReason == nil || *c.FinishReason != "stop" {
			t.Fatalf("choice %d: %+v", i, c)
		}
	}
	if u := b.Usage; u == nil || u.PromptTokens != 3*one.PromptTokens || u.CompletionTokens != 3*one.CompletionTokens ||
		u.TotalTokens != 3*one.TotalTokens {
		t.Fatalf("usage %+v, want 3 × %+v", b.Usage, one)
	}
	reqs := r.fake.Requests()
	if len(reqs) != 4 {
		t.Fatalf("%d upstream calls, want 1 + 3", len(reqs))
	}
	for _, q := range reqs[1:] {
		if q.Family != "anthropic" || strings.Contains(string(q.Body), `"n"`) {
			t.Fatalf("upstream call: %s %s", q.Family, q.Body)
		}
	}
}

// TestFanOutStream: streamed, the chunks of the three calls interleave,
// each with its choice's index and one id; each choice's deltas make the
// whole text; one usage chunk, the sum, comes last when the client asked
// for it (none when it did not), then one [DONE].
func TestFanOutStream(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	one := oneCallUsage(t, r, true)
	for _, usage := range []bool{true, false} {
		h := http.Header{"X-Fake-Interval-Ms": {"2"}}
		res := r.do("openai", "/v1/chat/completions", h, chatN(3, true, usage))
		if res.status != 200 || res.end.Code != proto.CodeOK {
			t.Fatalf("status %d end %v body %s", res.status, res.end, res.body)
		}
		texts, finished := make([]string, 3), make([]int, 3)
		var ids []string
		var usages []llmapi.ChatUsage
		done := 0
		events := strings.Split(strings.TrimSuffix(string(res.body), "\n\n"), "\n\n")
		for k, ev := range events {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok {
				continue // a keep-alive
			}
			if data == "[DONE]" {
				if done++; k != len(events)-1 {
					t.Fatalf("[DONE] at %d of %d", k, len(events))
				}
				continue
			}
			var c fanBody
			if err := json.Unmarshal([]byte(data), &c); err != nil || len(c.Error) > 0 {
				t.Fatalf("chunk %q: %v", data, err)
			}
			if c.Usage != nil {
				if len(c.Choices) != 0 || k != len(events)-2 {
					t.Fatalf("usage chunk %d of %d: %s", k, len(events), data)
				}
				usages = append(usages, *c.Usage)
			}
			ids = append(ids, c.ID)
			for _, ch := range c.Choices {
				texts[ch.Index] += ch.Delta.Content
				if ch.FinishReason != nil {
					finished[ch.Index]++
				}
			}
		}
		for i := range texts {
			if texts[i] != fakeprovider.Text(8) || finished[i] != 1 {
				t.Fatalf("choice %d: %q, %d finish reasons", i, texts[i], finished[i])
			}
		}
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("chunk ids differ: %v", ids)
			}
		}
		if done != 1 {
			t.Fatalf("%d [DONE]", done)
		}
		switch {
		case usage && (len(usages) != 1 || usages[0].CompletionTokens != 3*one.CompletionTokens || usages[0].PromptTokens != 3*one.PromptTokens):
			t.Fatalf("usage chunks %+v, want one of 3 × %+v", usages, one)
		case !usage && len(usages) != 0:
			t.Fatalf("usage chunk the client did not ask for: %+v", usages)
		}
	}
}

// TestFanOutRefused: n over the limit is a 400 before any call, and a
// relay with MaxChoices 1 refuses n > 1 for such providers as before; a
// route's own limit wins over the relay's.
func TestFanOutRefused(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	res := r.do("openai", "/v1/chat/completions", nil, `{"model":"claude-x","n":9,"messages":[{"role":"user","content":"hi"}]}`)
	if res.end.Code != proto.CodeBadRequest || !strings.Contains(res.end.Message, "at most 8 calls") || res.dispatched {
		t.Fatalf("n=9: %+v dispatched %v", res.end, res.dispatched)
	}
	r.d.cfg.MaxChoices = 1
	res = r.do("openai", "/v1/chat/completions", nil, chatN(2, false, false))
	if res.end.Code != proto.CodeBadRequest || !strings.Contains(res.end.Message, "n > 1 is not supported") {
		t.Fatalf("n=2 with MaxChoices 1: %+v", res.end)
	}
	if n := len(r.fake.Requests()); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}

	// A route's max_choices overrides the relay's, either way.
	reg, err := upstream.New(upstream.Config{Providers: []upstream.ProviderConfig{
		{Name: "anthropic", Kind: upstream.Anthropic, BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k1")}},
	}, Routes: []upstream.RouteConfig{
		{Model: "claude-opus-*", Provider: "anthropic", MaxChoices: 1},
		{Model: "claude-x", Provider: "anthropic", MaxChoices: 2},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.d.SetRegistry(reg)
	r.d.cfg.MaxChoices = DefaultMaxChoices
	res = r.do("openai", "/v1/chat/completions", nil, strings.Replace(chatN(2, false, false), "claude-x", "claude-opus-4", 1))
	if res.end.Code != proto.CodeBadRequest || !strings.Contains(res.end.Message, "n > 1 is not supported") {
		t.Fatalf("n=2 on a route with max_choices 1: %+v", res.end)
	}
	res = r.do("openai", "/v1/chat/completions", nil, chatN(3, false, false))
	if res.end.Code != proto.CodeBadRequest || !strings.Contains(res.end.Message, "at most 2 calls") {
		t.Fatalf("n=3 on a route with max_choices 2: %+v", res.end)
	}
	if res = r.do("openai", "/v1/chat/completions", nil, chatN(2, false, false)); res.status != 200 || len(r.fake.Requests()) != 2 {
		t.Fatalf("n=2 on a route with max_choices 2: %d %s", res.status, res.body)
	}
	if _, err := upstream.New(upstream.Config{Providers: []upstream.ProviderConfig{
		{Name: "anthropic", Kind: upstream.Anthropic, BaseURL: r.srv.URL, Keys: []upstream.Key{upstream.NewKey("k1")}},
	}, Routes: []upstream.RouteConfig{{Model: "c", Provider: "anthropic", MaxChoices: 129}}}, nil); err == nil {
		t.Fatal("max_choices 129 accepted")
	}
}

// TestFanOutFailure: one call's error before its first byte reaches the
// client as that error (its status, OpenAI's shape), whole or streamed,
// and the other calls, slow, are canceled rather than left to run; a
// failure mid-stream ends the merged stream as broken, never cleanly.
func TestFanOutFailure(t *testing.T) {
	for _, stream := range []bool{false, true} {
		r := newRig(t, rigOptions{keys: []string{"k1"}})
		r.fake.SetFault(fakeprovider.Fault{Status: 400, Count: 1})
		h := http.Header{"X-Fake-Interval-Ms": {"1000"}}
		res := r.do("openai", "/v1/chat/completions", h, chatN(3, stream, false))
		var b fanBody
		if res.status != 400 || json.Unmarshal(res.body, &b) != nil || len(b.Error) == 0 {
			t.Fatalf("stream %v: status %d body %s end %+v", stream, res.status, res.body, res.end)
		}
		// The failure may cancel a call before it reaches the provider;
		// every one that did reach it, but the failed one, is canceled.
		reqs := r.fake.Requests()
		n := 0
		for _, q := range reqs {
			if <-q.Done; canceled(q) {
				n++
			}
		}
		if len(reqs) == 0 || n != len(reqs)-1 {
			t.Fatalf("stream %v: %d of %d upstream calls canceled", stream, n, len(reqs))
		}
	}

	r := newRig(t, rigOptions{keys: []string{"k1"}})
	res := r.do("openai", "/v1/chat/completions", http.Header{"X-Fake-Break-After": {"3"}}, chatN(3, true, true))
	if res.status != 200 || res.end.Code == proto.CodeOK || strings.Contains(string(res.body), "[DONE]") {
		t.Fatalf("broken stream: status %d end %+v body %s", res.status, res.end, res.body)
	}
	for _, q := range r.fake.Requests() {
		<-q.Done
	}
}

// TestFanOutInBandError: one call's stream carries Anthropic's in-band
// overloaded error after it began. The client's merged stream passes that
// error event on, as OpenAI's, and ends there, cleanly and without
// [DONE]; the other calls, slow, are canceled.
func TestFanOutInBandError(t *testing.T) {
	var calls atomic.Int32
	overloaded := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if calls.Add(1) != 2 {
				next.ServeHTTP(w, req)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, `event: message_start`+"\n"+`data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}`+"\n\n")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, `event: error`+"\n"+`data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`+"\n\n")
		})
	}
	r := newRig(t, rigOptions{keys: []string{"k1"}, upstream: overloaded})
	res := r.do("openai", "/v1/chat/completions", http.Header{"X-Fake-Interval-Ms": {"1000"}}, chatN(3, true, true))
	body := string(res.body)
	if res.status != 200 || res.end.Code != proto.CodeOK || !strings.Contains(body, `"error"`) ||
		!strings.Contains(body, "Overloaded") || strings.Contains(body, "[DONE]") {
		t.Fatalf("status %d end %+v body %s", res.status, res.end, body)
	}
	if i := strings.Index(body, `"error"`); strings.Contains(body[i:], "\n\ndata: ") {
		t.Fatalf("events after the error: %s", body[i:])
	}
	for _, q := range r.fake.Requests() {
		if <-q.Done; !canceled(q) {
			t.Fatalf("call %s ran on after the error", q.Path)
		}
	}
}

func canceled(q fakeprovider.Request) bool {
	_, ok := q.Canceled()
	return ok
}
