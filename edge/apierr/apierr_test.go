package apierr

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

var allKinds = []Kind{InvalidRequest, Unauthenticated, NotFound, TooLarge, RateLimited, Internal, BadGateway, Unavailable, GatewayTimeout}

// TestKindStatus proves every kind has its documented HTTP status.
func TestKindStatus(t *testing.T) {
	want := []int{400, 401, 404, 413, 429, 500, 502, 503, 504}
	for i, k := range allKinds {
		if got := k.Status(); got != want[i] {
			t.Errorf("Kind(%d).Status() = %d, want %d", k, got, want[i])
		}
	}
}

// TestBodyShape proves that for every family and kind the body decodes into
// exactly the JSON shape that family's SDK parses, with the message intact.
func TestBodyShape(t *testing.T) {
	const msg = `bad "thing" <here>`
	for _, k := range allKinds {
		for _, code := range []string{"", "invalid_api_key"} {
			e := &Error{Kind: k, Message: msg, Code: code}

			var oa struct {
				Error map[string]any `json:"error"`
			}
			decodeStrict(t, Body(llmapi.OpenAI, e), &oa)
			for _, f := range []string{"message", "type", "param", "code"} {
				if _, ok := oa.Error[f]; !ok {
					t.Errorf("openai kind %d: error.%s missing: %v", k, f, oa.Error)
				}
			}
			if oa.Error["message"] != msg || oa.Error["type"] == "" || oa.Error["param"] != nil {
				t.Errorf("openai kind %d: %v", k, oa.Error)
			}
			var wantCode any // null unless set
			if code != "" {
				wantCode = code
			}
			if oa.Error["code"] != wantCode {
				t.Errorf("openai kind %d: code = %v, want %v", k, oa.Error["code"], wantCode)
			}
			if got := Body("", e); !bytes.Equal(got, Body(llmapi.OpenAI, e)) {
				t.Errorf("unknown family body %s, want OpenAI's", got)
			}

			var an struct {
				Type  string `json:"type"`
				Error struct {
					Type    string `json:"type"`
					Message string `json:"message"`
				} `json:"error"`
			}
			decodeStrict(t, Body(llmapi.Anthropic, e), &an)
			if an.Type != "error" || an.Error.Type == "" || an.Error.Message != msg {
				t.Errorf("anthropic kind %d: %+v", k, an)
			}

			var ge struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			decodeStrict(t, Body(llmapi.Gemini, e), &ge)
			if ge.Error.Code != k.Status() || ge.Error.Message != msg || ge.Error.Status == "" {
				t.Errorf("gemini kind %d: %+v", k, ge)
			}
		}
	}
}

// TestBodyTypes pins the type strings SDKs branch on for a few kinds.
func TestBodyTypes(t *testing.T) {
	tests := []struct {
		kind                     Kind
		openai, anthropic, gstat string
	}{
		{Unauthenticated, "invalid_request_error", "authentication_error", "UNAUTHENTICATED"},
		{RateLimited, "rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"},
		{Unavailable, "server_error", "overloaded_error", "UNAVAILABLE"},
		{NotFound, "invalid_request_error", "not_found_error", "NOT_FOUND"},
		// anthropic-sdk-go's GatewayTimeoutError: Anthropic's 504.
		{GatewayTimeout, "server_error", "timeout_error", "DEADLINE_EXCEEDED"},
		{BadGateway, "server_error", "api_error", "UNAVAILABLE"},
		{HeaderTooLarge, "invalid_request_error", "request_too_large", "INVALID_ARGUMENT"},
		{RequestTimeout, "invalid_request_error", "invalid_request_error", "DEADLINE_EXCEEDED"},
	}
	for _, tc := range tests {
		e := &Error{Kind: tc.kind, Message: "m"}
		for fam, want := range map[llmapi.Family]string{
			llmapi.OpenAI:    `"type":"` + tc.openai + `"`,
			llmapi.Anthropic: `"type":"` + tc.anthropic + `"`,
			llmapi.Gemini:    `"status":"` + tc.gstat + `"`,
		} {
			if b := Body(fam, e); !strings.Contains(string(b), want) {
				t.Errorf("Body(%s, kind %d) = %s, want it to contain %s", fam, tc.kind, b, want)
			}
		}
	}
}

// TestWrite proves Write sets the status, JSON content type, the marker
// header, and a Retry-After rounded up to whole seconds (absent when zero).
func TestWrite(t *testing.T) {
	tests := []struct {
		retry time.Duration
		want  string
	}{
		{0, ""},
		{-time.Second, ""},
		{time.Millisecond, "1"},
		{time.Second, "1"},
		{1500 * time.Millisecond, "2"},
		{2 * time.Second, "2"},
		{61*time.Second + 1, "62"},
	}
	for _, tc := range tests {
		for _, fam := range []llmapi.Family{llmapi.OpenAI, llmapi.Anthropic, llmapi.Gemini} {
			e := &Error{Kind: RateLimited, Message: "slow down", RetryAfter: tc.retry}
			rec := httptest.NewRecorder()
			Write(rec, fam, e)
			res := rec.Result()
			if res.StatusCode != http.StatusTooManyRequests {
				t.Errorf("%s: status %d", fam, res.StatusCode)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q", fam, ct)
			}
			if res.Header.Get("X-Strait-Error") == "" {
				t.Errorf("%s: X-Strait-Error missing", fam)
			}
			if got, ok := res.Header["Retry-After"]; tc.want == "" && ok || tc.want != "" && (len(got) != 1 || got[0] != tc.want) {
				t.Errorf("%s RetryAfter %v: Retry-After = %q, want %q", fam, tc.retry, got, tc.want)
			}
			if !bytes.Equal(rec.Body.Bytes(), Body(fam, e)) {
				t.Errorf("%s: body %s, want %s", fam, rec.Body.Bytes(), Body(fam, e))
			}
		}
	}
}

// TestStreamEvent proves the in-band SSE error framing: Anthropic SDKs need
// "event: error", the others a bare data line; each ends the event.
func TestStreamEvent(t *testing.T) {
	e := &Error{Kind: BadGateway, Message: "upstream reset"}
	tests := []struct {
		fam    llmapi.Family
		prefix string
	}{
		{llmapi.Anthropic, "event: error\ndata: "},
		{llmapi.OpenAI, "data: "},
		{llmapi.Gemini, "data: "},
	}
	for _, tc := range tests {
		got := string(StreamEvent(tc.fam, e))
		want := tc.prefix + string(Body(tc.fam, e)) + "\n\n"
		if got != want {
			t.Errorf("StreamEvent(%s) = %q, want %q", tc.fam, got, want)
		}
		if strings.Count(got, "\n\n") != 1 {
			t.Errorf("StreamEvent(%s) is not exactly one event: %q", tc.fam, got)
		}
	}
}

func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
