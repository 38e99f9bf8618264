package convert

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a ResponseWriter that keeps everything.
type recorder struct {
	status int
	header http.Header
	body   bytes.Buffer
	writes int
}

func (r *recorder) WriteHeader(status int, h http.Header) error {
	r.status, r.header = status, h
	return nil
}

func (r *recorder) Write(p []byte) error {
	r.writes++
	r.body.Write(p)
	return nil
}

// TestResponseGolden converts each recorded non-streaming provider answer
// into every client dialect.
func TestResponseGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/response/*.json")
	eachDirection(t, files, func(t *testing.T, in string, src []byte, provider, client Dialect) {
		p := &Plan{Client: client, Provider: provider, req: fixtureRequest(client, in, false)}
		var rec recorder
		if err := p.Respond(200, http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(src), &rec); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, rec.body.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
		golden(t, strings.TrimSuffix(in, ".json")+".to."+string(client)+".golden", out.Bytes())
	})
}

// TestErrorMapping proves provider errors reach the client with its own
// dialect's status and body shape, and Retry-After survives.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name             string
		provider, client Dialect
		status           int
		body             string
		wantStatus       int
		wantBody         string
	}{
		{"anthropic overloaded to chat", Anthropic, Chat, 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 503,
			`{"error":{"code":null,"message":"Overloaded","param":null,"type":"server_error"}}`},
		{"anthropic rate limit to responses", Anthropic, Responses, 429,
			`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, 429,
			`{"error":{"code":null,"message":"slow down","param":null,"type":"rate_limit_error"}}`},
		{"gemini invalid to chat", Gemini, Chat, 400,
			`{"error":{"code":400,"message":"Function call is missing a thought_signature","status":"INVALID_ARGUMENT"}}`, 400,
			`{"error":{"code":null,"message":"Function call is missing a thought_signature","param":null,"type":"invalid_request_error"}}`},
		{"gemini unavailable to anthropic", Gemini, Anthropic, 503,
			`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, 529,
			`{"error":{"message":"The model is overloaded.","type":"overloaded_error"},"type":"error"}`},
		{"gemini auth to anthropic", Gemini, Anthropic, 400,
			`[{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}]`, 400,
			`{"error":{"message":"API key not valid.","type":"invalid_request_error"},"type":"error"}`},
		{"openai auth to anthropic", Chat, Anthropic, 401,
			`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, 401,
			`{"error":{"message":"Incorrect API key provided","type":"authentication_error"},"type":"error"}`},
		{"openai not found to anthropic", Chat, Anthropic, 404,
			`{"error":{"message":"The model does not exist","type":"invalid_request_error"}}`, 404,
			`{"error":{"message":"The model does not exist","type":"not_found_error"},"type":"error"}`},
		{"html 502 to chat", Chat, Chat, 502, `<html>bad gateway</html>`, 500,
			`{"error":{"code":null,"message":"<html>bad gateway</html>","param":null,"type":"server_error"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Client: tc.client, Provider: tc.provider, req: &Request{}}
			var rec recorder
			h := http.Header{"Retry-After": {"7"}}
			if err := p.Respond(tc.status, h, strings.NewReader(tc.body), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.status != tc.wantStatus || rec.body.String() != tc.wantBody {
				t.Fatalf("got %d %s\nwant %d %s", rec.status, rec.body.String(), tc.wantStatus, tc.wantBody)
			}
			if rec.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After lost: %v", rec.header)
			}
		})
	}
}

// TestStreamWritesPerEvent proves the translator does not buffer: each
// provider event that converts is written before the next one is read.
func TestStreamWritesPerEvent(t *testing.T) {
	src, err := os.ReadFile("testdata/stream/chat_parallel_tools.sse")
	if err != nil {
		t.Fatal(err)
	}
	events := bytes.Split(bytes.TrimSpace(src), []byte("\n\n"))
	pr, pw := io.Pipe()
	writes := make(chan []byte, 100)
	p := &Plan{Client: Anthropic, Provider: Chat, Stream: true, req: &Request{Model: "m"}}
	done := make(chan error, 1)
	go func() {
		done <- p.Translate(pr, false, func(b []byte) error { writes <- b; return nil })
		close(writes)
	}()
	// After the provider's second event (a tool-argument fragment) the
	// client must already hold that fragment, with the rest unsent.
	for i, ev := range events[:2] {
		if _, err := pw.Write(append(ev, "\n\n"...)); err != nil {
			t.Fatal(err)
		}
		want := []string{"message_start", "input_json_delta"}[i]
		for {
			b := <-writes
			if bytes.Contains(b, []byte(want)) {
				break
			}
		}
	}
	if _, err := pw.Write([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"x\"}}]}}]}\n\n")); err != nil {
		t.Fatal(err)
	}
	if b := <-writes; !bytes.Contains(b, []byte(`"partial_json":"x"`)) {
		t.Fatalf("third fragment not passed on alone: %s", b)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	for range writes {
	}
	if err := <-done; err == nil {
		t.Fatal("a cut stream must end in an error")
	}
}
