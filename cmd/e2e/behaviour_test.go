package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genai"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// slow asks the fake for n tokens spaced by interval.
func slow(n int, interval time.Duration) []option.RequestOption {
	return []option.RequestOption{
		option.WithHeader("X-Fake-Tokens", fmt.Sprint(n)),
		option.WithHeader("X-Fake-Interval-Ms", fmt.Sprint(interval.Milliseconds())),
	}
}

// TestFirstEventArrivesBeforeStreamEnds proves nothing on the path buffers
// the stream: the first token reaches the SDK long before the last one has
// even been generated.
func TestFirstEventArrivesBeforeStreamEnds(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		const tokens, interval = 10, 100 * time.Millisecond
		start := time.Now()
		stream := s.openai(slow(tokens, interval)...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
		defer stream.Close()
		var first time.Duration
		var text strings.Builder
		for stream.Next() {
			c := stream.Current()
			if len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" && first == 0 {
				first = time.Since(start)
			}
			if len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		total := time.Since(start)
		t.Logf("first token after %v, stream complete after %v", first, total)
		if text.String() != fakeprovider.Text(tokens) {
			t.Fatalf("text = %q", text.String())
		}
		if total < (tokens-1)*interval {
			t.Fatalf("stream finished in %v: the fake's pacing was not applied", total)
		}
		if first == 0 || first > total/2 {
			t.Fatalf("first token after %v of %v: the stream was buffered", first, total)
		}
	})
}

// TestStreamedAnswersLeaveTheHandler: over HTTP/1.1 a streamed answer
// goes on detached from net/http once its header is out (edge/detach),
// and arrives whole; over HTTP/2 it stays with net/http. A client that
// reads a detached answer to its end, as the Python and Node SDKs do, gets
// its connection served again for its next request.
func TestStreamedAnswersLeaveTheHandler(t *testing.T) {
	s := newStack(t, stackOptions{})
	t.Run("HTTP/1.1", func(t *testing.T) { streamDetached(t, s, s.client, 1) })
	t.Run("HTTP/2", func(t *testing.T) { streamDetached(t, s, s.http2Client(), 0) })
	t.Run("keep-alive", func(t *testing.T) {
		streamToEnd(t, s)
		for i := range 2 {
			if !streamToEnd(t, s) {
				t.Fatalf("request %d after the first went out on a new connection", i+2)
			}
		}
	})
	// The Go SDK stops reading at [DONE] and closes the body: Go's
	// transport keeps the connection only if the body's last chunk came
	// in the same read. The edge sends the two together when the relay's
	// End is already there as it forwards the last event (proto's
	// EndsNext), which timing decides: 13 to 18 streams of 19 kept their
	// connection in runs under -race, none before the edge did this.
	t.Run("Go SDK keep-alive", func(t *testing.T) {
		const streams = 20
		kept := 0
		for i := range streams {
			reused := false
			ctx := httptrace.WithClientTrace(testCtx(t, 20*time.Second), &httptrace.ClientTrace{
				GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused }})
			stream := s.openai(option.WithHTTPClient(s.client)).Chat.Completions.NewStreaming(ctx, chatParams)
			for stream.Next() {
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			stream.Close()
			if i > 0 && reused {
				kept++
			}
		}
		if kept < 5 {
			t.Fatalf("%d of %d streams went out on the connection of the stream before; want at least 5", kept, streams-1)
		}
	})
}

// streamDetached streams a chat completion through s over client and
// checks that the edge counts detached streams mid-answer (want: 1, or 0
// for an answer net/http keeps), the text, and none once it is over.
func streamDetached(t *testing.T, s *stack, client *http.Client, want float64) {
	t.Helper()
	opts := append(slow(3, 50*time.Millisecond), option.WithHTTPClient(client))
	stream := s.openai(opts...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
	var text strings.Builder
	for n := 0; stream.Next(); n++ {
		if n == 0 {
			if got := edgeMetric(s, "strait_edge_detached_streams"); got != want {
				t.Fatalf("%v detached streams mid-answer; want %v", got, want)
			}
		}
		if c := stream.Current(); len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if text.String() != fakeprovider.Text(3) {
		t.Fatalf("text %q", text.String())
	}
	// The SDK stops at [DONE]; the edge ends the answer when the relay's
	// End follows it.
	waitWithin(t, 5*time.Second, "no detached stream after the answer", func() bool {
		return edgeMetric(s, "strait_edge_detached_streams") == 0
	})
}

// streamToEnd asks for a streamed chat completion over s.client, reads
// the answer to its end and reports whether the connection was used
// before.
func streamToEnd(t *testing.T, s *stack) (reused bool) {
	t.Helper()
	ctx := httptrace.WithClientTrace(testCtx(t, 20*time.Second), &httptrace.ClientTrace{
		GotConn: func(c httptrace.GotConnInfo) { reused = c.Reused }})
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.edgeURL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+clientKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || !bytes.Contains(got, []byte("data: [DONE]")) {
		t.Fatalf("status %d, %v: %.200q", res.StatusCode, err, got)
	}
	return reused
}

// TestClientCancelReachesUpstream: a client that hangs up makes the relay
// cancel the provider call within a second, mid-stream or before headers.
func TestClientCancelReachesUpstream(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		tests := []struct {
			name string
			run  func(ctx context.Context, started chan<- struct{})
		}{
			{"mid-stream", func(ctx context.Context, started chan<- struct{}) {
				stream := s.openai(slow(100, 100*time.Millisecond)...).Chat.Completions.NewStreaming(ctx, chatParams)
				defer stream.Close()
				once := sync.Once{}
				for stream.Next() {
					once.Do(func() { close(started) })
				}
			}},
			{"waiting for headers", func(ctx context.Context, started chan<- struct{}) {
				go func() {
					if _, err := s.fake.WaitRequests(ctx, 1); err == nil {
						close(started)
					}
				}()
				p := chatParams
				p.Model = "hang"
				_, _ = s.openai().Chat.Completions.New(ctx, p)
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s.fake.Reset()
				ctx, cancel := context.WithCancel(testCtx(t, 20*time.Second))
				started := make(chan struct{})
				done := make(chan struct{})
				go func() { defer close(done); tt.run(ctx, started) }()
				select {
				case <-started:
				case <-time.After(10 * time.Second):
					t.Fatal("request never started")
				}
				canceledAt := time.Now()
				cancel()
				<-done
				req := s.fake.Requests()[0]
				select {
				case <-req.Done:
				case <-time.After(time.Second):
					t.Fatal("upstream handler still running 1s after the client hung up")
				}
				at, ok := req.Canceled()
				if !ok {
					t.Fatal("the fake provider never saw the cancellation")
				}
				t.Logf("upstream canceled %v after the client", at.Sub(canceledAt))
			})
		}
	})
}

// TestUpstreamErrorsPassThrough: provider errors reach each SDK as its typed
// error with the provider's status and Retry-After, untouched by Strait.
func TestUpstreamErrorsPassThrough(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		for _, status := range []int{429, 500} {
			model := fmt.Sprintf("fail-%d", status)
			t.Run("openai "+model, func(t *testing.T) {
				p := chatParams
				p.Model = model
				_, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), p)
				var e *openai.Error
				if !errors.As(err, &e) || e.StatusCode != status {
					t.Fatalf("err = %v, want *openai.Error %d", err, status)
				}
				checkPassThrough(t, e.Response, status)
			})
			t.Run("anthropic "+model, func(t *testing.T) {
				p := messageParams
				p.Model = anthropic.Model(model)
				_, err := s.anthropic().Messages.New(testCtx(t, 10*time.Second), p)
				var e *anthropic.Error
				if !errors.As(err, &e) || e.StatusCode != status {
					t.Fatalf("err = %v, want *anthropic.Error %d", err, status)
				}
				checkPassThrough(t, e.Response, status)
			})
			t.Run("gemini "+model, func(t *testing.T) {
				_, err := s.gemini(t).Models.GenerateContent(testCtx(t, 10*time.Second), model, genai.Text("hi"), nil)
				var e genai.APIError
				if !errors.As(err, &e) || e.Code != status {
					t.Fatalf("err = %v, want genai.APIError %d", err, status)
				}
			})
		}
	})
}

func checkPassThrough(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.Header.Get("X-Strait-Error") != "" {
		t.Error("a provider error was replaced by a Strait error")
	}
	if status == 429 && resp.Header.Get("Retry-After") == "" {
		t.Error("Retry-After was not passed through")
	}
}

// TestStraitErrorsUseTheFamilyFormat: errors Strait itself produces parse
// as each SDK's typed error with a clear message, and never reach upstream.
func TestStraitErrorsUseTheFamilyFormat(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{edgeMaxBody: 1 << 20, transport: transport})
		big := strings.Repeat("x", 2<<20)
		t.Run("openai bad key", func(t *testing.T) {
			_, err := s.openai(option.WithAPIKey("wrong-key-0123456789")).Chat.Completions.New(testCtx(t, 10*time.Second), chatParams)
			wantOpenAIError(t, err, 401, "Invalid Strait client key")
		})
		t.Run("openai body too large", func(t *testing.T) {
			p := chatParams
			p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(big)}
			_, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), p)
			wantOpenAIError(t, err, 413, "exceeds Strait's limit of 1 MiB")
		})
		t.Run("anthropic bad key", func(t *testing.T) {
			c := anthropic.NewClient(anthropicOpts(s, "wrong-key-0123456789")...)
			_, err := c.Messages.New(testCtx(t, 10*time.Second), messageParams)
			var e *anthropic.Error
			if !errors.As(err, &e) || e.StatusCode != 401 || !strings.Contains(e.Error(), "authentication_error") {
				t.Fatalf("err = %v, want anthropic 401 authentication_error", err)
			}
		})
		t.Run("gemini bad key", func(t *testing.T) {
			c, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: "wrong-key-0123456789",
				Backend: genai.BackendGeminiAPI, HTTPClient: s.client, HTTPOptions: genai.HTTPOptions{BaseURL: s.edgeURL}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Models.GenerateContent(testCtx(t, 10*time.Second), "gemini-2.5-flash", genai.Text("hi"), nil)
			var e genai.APIError
			if !errors.As(err, &e) || e.Code != 401 || e.Status != "UNAUTHENTICATED" {
				t.Fatalf("err = %v, want genai 401 UNAUTHENTICATED", err)
			}
		})
		rawCases := []struct {
			name, path, body, header, wantType string
			status                             int
		}{
			{"malformed JSON", "/v1/chat/completions", `{"model": "gpt-4o", "messages": [`, "Authorization", `"invalid_request_error"`, 400},
			{"unknown path", "/v2/whatever", `{}`, "Authorization", `"invalid_request_error"`, 404},
			{"missing key anthropic", "/v1/messages", `{}`, "", `"authentication_error"`, 401},
		}
		for _, tc := range rawCases {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("POST", s.edgeURL+tc.path, strings.NewReader(tc.body))
				req.Header.Set("Content-Type", "application/json")
				if tc.header != "" {
					req.Header.Set(tc.header, "Bearer "+clientKey)
				}
				resp, err := s.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.wantType) {
					t.Fatalf("got %d %s, want %d with %s", resp.StatusCode, body, tc.status, tc.wantType)
				}
			})
		}
		if n := len(s.fake.Requests()); n != 0 {
			t.Fatalf("%d rejected requests reached the provider", n)
		}
	})
}

func wantOpenAIError(t *testing.T, err error, status int, msg string) {
	t.Helper()
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != status || !strings.Contains(e.Message, msg) {
		t.Fatalf("err = %v, want *openai.Error %d containing %q", err, status, msg)
	}
}

// TestLargeRequestBody sends 10 MB through the tunnel and checks the
// provider got every byte.
func TestLargeRequestBody(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		content := strings.Repeat("0123456789", 1<<20) // 10 MiB
		p := chatParams
		p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage(content)}
		// The deadline only bounds a hang: 10 MiB through QUIC under -race
		// took over 30 s on a loaded two-core machine.
		if _, err := s.openai().Chat.Completions.New(testCtx(t, 2*time.Minute), p); err != nil {
			t.Fatal(err)
		}
		got := s.fake.Requests()[0].Body
		if len(got) < len(content) || !bytes.Contains(got, []byte(content)) {
			t.Fatalf("provider got %d bytes, want the %d-byte message intact", len(got), len(content))
		}
	})
}

// TestConcurrentStreams runs 200 streams at once over the tunnel.
func TestConcurrentStreams(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		// The stack's 1 s + 2 s heartbeat suits tests that black-hole the
		// tunnel. Here 200 streams under -race on a loaded two-core machine
		// starve the process for seconds, and QUIC's idle timeout
		// (heartbeat + timeout) ended live sessions ("no recent network
		// activity" 3.4 s after the session came up); the edge then resent
		// the requests whose Dispatched it had not read (the provider saw up
		// to 240 for 200) or failed the rest with 502s. This test is about
		// concurrency, not liveness: it runs with the production defaults
		// (15 s + 10 s, the zero values).
		s := newStack(t, stackOptions{transport: transport,
			relayTLSEdit: func(f *relaycmd.File) { f.Heartbeat, f.HeartbeatTimeout = 0, 0 },
			edgeEdit:     func(f *edgecmd.File) { f.Tunnel.Heartbeat, f.Tunnel.HeartbeatTimeout = 0, 0 }})
		const n = 200
		ctx := testCtx(t, 60*time.Second)
		client := s.openai(slow(8, 10*time.Millisecond)...)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text, err := chatStreamText(ctx, client)
				if err != nil {
					errs <- fmt.Errorf("stream %d: %w", i, err)
				} else if text != fakeprovider.Text(8) {
					errs <- fmt.Errorf("stream %d: text %q", i, text)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(s.fake.Requests()); got != n {
			t.Errorf("provider saw %d requests, want %d", got, n)
		}
		// 200 streams on the default two sessions ask for more: the pool
		// grows (and says so in its metrics) instead of piling every stream
		// on two congestion windows.
		if got := scaleUps(s); got == 0 {
			t.Errorf("no tunnel session added for %d concurrent streams", n)
		}
		if t.Failed() {
			s.logSummary(t)
		}
	})
}

// logSummary logs each distinct message the relay and the edge logged, with
// how often and the fields of its first occurrence: a failure seen only on a
// loaded machine must be diagnosable from its output (a lost session, a
// resend, an upstream retry), since it may not come back when rerun.
func (s *stack) logSummary(t *testing.T) {
	t.Helper()
	for _, side := range []struct {
		name string
		logs *observer.ObservedLogs
	}{{"relay", s.relayLogs}, {"edge", s.edgeLogs}} {
		count := map[string]int{}
		var order []observer.LoggedEntry
		for _, e := range side.logs.All() {
			if count[e.Message]++; count[e.Message] == 1 {
				order = append(order, e)
			}
		}
		for _, e := range order {
			t.Logf("%s log, %d× %s %q, first at %s: %v", side.name, count[e.Message], e.Level, e.Message,
				e.Time.Format("15:04:05.000"), e.ContextMap())
		}
	}
}

// TestKeepAliveReuse sends many sequential requests over one HTTP/1.1
// connection, mixing successes and every kind of early rejection; a client
// must never be handed a connection the edge has already closed.
func TestKeepAliveReuse(t *testing.T) {
	s := newStack(t, stackOptions{})
	tr := s.client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
	tr.TLSClientConfig = tr.TLSClientConfig.Clone()
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	tr.MaxConnsPerHost = 1
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	steps := []struct {
		key, body string
		status    int
	}{
		{clientKey, `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, 200},
		{"bad-key-0123456789abc", `{"model":"gpt-4o","messages":[]}`, 401},
		{clientKey, `{"model":`, 400},
		{clientKey, `{"model":"fail-500","messages":[{"role":"user","content":"hi"}]}`, 500},
	}
	var newConns int
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			newConns++
		}
	}}
	const rounds = 25
	for i := range rounds * len(steps) {
		step := steps[i%len(steps)]
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(testCtx(t, 10*time.Second), trace),
			"POST", s.edgeURL+"/v1/chat/completions", strings.NewReader(step.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+step.key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != step.status {
			t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, step.status)
		}
	}
	if newConns != 1 {
		t.Fatalf("%d connections for %d requests, want 1 reused throughout", newConns, rounds*len(steps))
	}
}
