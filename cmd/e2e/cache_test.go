package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/edge"
)

// TestResponseCache: with the cache on for a route, a repeated request is
// answered by the edge (X-Strait-Cache: hit, the recorded response,
// streams replayed whole); Cache-Control: no-cache goes to the provider;
// an error is never kept; model listings are cached without any setting.
func TestResponseCache(t *testing.T) {
	s := newStack(t, stackOptions{edgeEdit: func(f *edgecmd.File) {
		// By route here; by key in TestTwoEdgesOneRedis.
		f.ResponseCache = &edge.CacheConfig{Paths: []string{"/v1/chat/*"}, TTL: time.Minute}
	}})
	ctx := testCtx(t, 30*time.Second)
	chat := func(opts ...option.RequestOption) (*openai.ChatCompletion, string) {
		t.Helper()
		var resp *http.Response
		c, err := s.openai().Chat.Completions.New(ctx, chatParams, append(opts, option.WithResponseInto(&resp))...)
		if err != nil {
			t.Fatal(err)
		}
		return c, resp.Header.Get("X-Strait-Cache")
	}
	first, st1 := chat()
	waitStored(t, s.edgeAdmin, 1)
	again, st2 := chat()
	if st1 != "miss" || st2 != "hit" || again.ID != first.ID || again.Choices[0].Message.Content != first.Choices[0].Message.Content {
		t.Fatalf("first %s (%s), again %s (%s); want a miss, then a hit with the same completion", first.ID, st1, again.ID, st2)
	}
	if fresh, st := chat(option.WithHeader("Cache-Control", "no-cache")); st != "" || fresh.ID == first.ID {
		t.Fatalf("Cache-Control: no-cache answered %s (%q); want a fresh completion", fresh.ID, st)
	}

	stream := func() (string, string) {
		var resp *http.Response
		p := chatParams
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Stream a hello")}
		st := s.openai().Chat.Completions.NewStreaming(ctx, p, option.WithResponseInto(&resp),
			option.WithHeader("X-Fake-Interval-Ms", "20"))
		defer st.Close()
		var b strings.Builder
		for st.Next() {
			if c := st.Current(); len(c.Choices) > 0 {
				b.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		return b.String(), resp.Header.Get("X-Strait-Cache")
	}
	text1, st1 := stream()
	waitStored(t, s.edgeAdmin, 2)
	start := time.Now()
	text2, st2 := stream()
	if st1 != "miss" || st2 != "hit" || text1 != text2 || text1 == "" {
		t.Fatalf("streams %q (%s) and %q (%s); want a miss, then the same text as a hit", text1, st1, text2, st2)
	}
	t.Logf("streamed hit replayed in %v", time.Since(start).Round(time.Microsecond))

	fault := openai.ChatCompletionNewParams{Model: chatParams.Model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("fail me")}}
	for i := range 2 {
		var resp *http.Response
		_, err := s.openai().Chat.Completions.New(ctx, fault, option.WithHeader("X-Fake-Fault", "500"), option.WithResponseInto(&resp))
		if statusOf(err) != 500 || resp.Header.Get("X-Strait-Cache") != "miss" {
			t.Fatalf("error %d: %v (cache %q); want the provider's 500, never from the cache", i, err, resp.Header.Get("X-Strait-Cache"))
		}
	}

	var lists []string
	for range 2 {
		var resp *http.Response
		if _, err := s.openai().Models.List(ctx, option.WithResponseInto(&resp)); err != nil {
			t.Fatal(err)
		}
		lists = append(lists, resp.Header.Get("X-Strait-Cache"))
		waitStored(t, s.edgeAdmin, 3)
	}
	if lists[0] != "miss" || lists[1] != "hit" {
		t.Fatalf("model listings: %v; want miss, hit", lists)
	}
	// Hits are metered as cached: counted, but no tokens and no cost (once
	// their last byte is out).
	waitFor(t, "3 cached requests in the usage report (chat, stream, listing)", func() bool {
		return usageReport(t, s, "key=test-app").Total.Cached == 3
	})
}

// waitStored waits until the edge at admin has stored n responses in its
// cache: it stores one after sending it, so a client can be faster.
func waitStored(t *testing.T, admin string, n int) {
	t.Helper()
	want := `strait_cache_requests_total{result="stored"} ` + strconv.Itoa(n)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, body := adminGet(t, admin, "/metrics"); strings.Contains(body, want+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the edge did not store response %d in its cache", n)
		}
	}
}
