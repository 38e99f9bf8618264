package edge

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/ingress"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

// TestBrokenAnswerNotCached: an answer whose tunnel stream broke off
// mid-body is never kept, although its status (200) went out and the
// forwarder, aborting the handler, never returned a Result with its
// error. It used to be: the model listing's first half was served from
// the cache, as a whole 200, to the client's retry.
func TestBrokenAnswerNotCached(t *testing.T) {
	const listing = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`
	relay := startStubRelay(t)
	var calls atomic.Int32
	relay.script = func(w *proto.Writer) {
		_ = w.WriteResponse(&proto.ResponseHeader{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}})
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(listing[:20])) // and the stream ends, without End
			return
		}
		_, _ = w.Write([]byte(listing))
		_ = w.WriteEnd(proto.End{})
	}
	r := newEdgeRigTo(t, relay, Config{}, entry("app", auth.Client{}))
	get := func() (body, cache string, err error) {
		req, err := http.NewRequest(http.MethodGet, r.url+"/v1/models", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer key-of-app")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("X-Strait-Cache"), err
	}
	// The connection is cut once the handler, its accounting included,
	// is done: the error means the response cache has had its say.
	if body, _, err := get(); err == nil {
		t.Fatalf("first listing %q arrived whole; want it cut", body)
	}
	body, cache, err := get()
	if err != nil || body != listing || cache != "miss" {
		t.Fatalf("second listing %q (cache %q, %v); want the whole listing from the relay (miss)", body, cache, err)
	}
}

// TestCacheKeyedOnAnswerShapingHeaders: a cached answer is never served
// to a request that differs only in a header the provider answers by
// (anthropic-beta and anthropic-version turn on features and change the
// answer's shape): each such request crosses the border once, and a
// repeat of either is a hit. SDK telemetry headers do not split the key.
func TestCacheKeyedOnAnswerShapingHeaders(t *testing.T) {
	const message = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",` +
		`"content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1}}`
	relay := startStubRelay(t)
	var calls atomic.Int32
	relay.answer = func([]byte) []byte { calls.Add(1); return []byte(message) }
	r := newEdgeRigTo(t, relay, Config{Cache: &CacheConfig{Keys: []string{"app"}}}, entry("app", auth.Client{}))
	send := func(header ...string) string {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, r.url+messagesPath, strings.NewReader(messagesBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", jsonType)
		req.Header.Set("X-Api-Key", "key-of-app")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		for i := 0; i < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if b, err := io.ReadAll(resp.Body); err != nil || string(b) != message {
			t.Fatalf("body %q, %v", b, err)
		}
		return resp.Header.Get("X-Strait-Cache")
	}
	for i, tc := range []struct {
		header []string
		cache  string
	}{
		{nil, "miss"},
		{[]string{"X-Stainless-Retry-Count", "1"}, "hit"},
		{[]string{"Anthropic-Beta", "interleaved-thinking-2025-05-14"}, "miss"},
		{[]string{"Anthropic-Beta", "interleaved-thinking-2025-05-14", "X-Stainless-Retry-Count", "2"}, "hit"},
		{[]string{"Anthropic-Version", "2024-01-01"}, "miss"},
		{[]string{"Anthropic-Version", "2024-01-01"}, "hit"},
	} {
		if got := send(tc.header...); got != tc.cache {
			t.Fatalf("request %d %q: cache %q; want %q", i, tc.header, got, tc.cache)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("the relay answered %d requests; want 3, one per distinct request", n)
	}
}

// TestCutStreamKeptOnlyWhole: an event stream cut because its client left
// is kept only if it reached its family's last event; the usage event that
// comes before it (Anthropic's message_delta) is not the end.
func TestCutStreamKeptOnlyWhole(t *testing.T) {
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		record string
		whole  bool
	}{
		{"at the usage", "event: message_delta\ndata: {\"usage\":{\"output_tokens\":3}}\n\n", false},
		{"at message_stop", "event: message_delta\ndata: {\"usage\":{\"output_tokens\":3}}\n\nevent: message_stop\ndata: {}\n\n", true},
	} {
		c := &call{r: httptest.NewRequest("POST", "/v1/messages", nil).WithContext(gone),
			route: ingress.Route{Family: llmapi.Anthropic}}
		c.tap = &tap{c: c, record: []byte(tc.record), recordHeader: http.Header{"Content-Type": {"text/event-stream"}}}
		if got := clientLeftAfterEnd(c, "reported"); got != tc.whole {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.whole)
		}
	}
}
