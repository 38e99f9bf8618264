package fakeprovider

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestForeignAccountRefused: the fake refuses organizations, projects and
// files its account does not own with the real APIs' shapes, and accepts
// its own.
func TestForeignAccountRefused(t *testing.T) {
	e := start(t, Config{})
	chat := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	oa := func(k, v string) http.Header {
		return http.Header{"Authorization": {"Bearer " + openAIKey}, "Content-Type": {"application/json"}, k: {v}}
	}
	for _, tc := range []struct {
		name, path, body string
		h                http.Header
		status           int
		want             string
	}{
		{"own org", "/v1/chat/completions", chat, oa("Openai-Organization", OwnedOrganization), 200, `"chat.completion"`},
		{"foreign org", "/v1/chat/completions", chat, oa("Openai-Organization", "org-x"), 401, `"code":"mismatched_organization"`},
		{"foreign project", "/v1/chat/completions", chat, oa("Openai-Project", "proj_x"), 401, `"code":"mismatched_project"`},
		{"gemini file", "/v1beta/models/gemini-2.5-flash:generateContent",
			`{"contents":[{"parts":[{"fileData":{"fileUri":"https://generativelanguage.googleapis.com/v1beta/files/f1"}}]}]}`,
			http.Header{"X-Goog-Api-Key": {geminiKey}}, 403, `"status":"PERMISSION_DENIED"`},
		{"gemini wrong key", "/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`,
			http.Header{"X-Goog-Api-Key": {"AIza-wrong"}}, 400, `"reason":"API_KEY_INVALID"`},
	} {
		resp, body := e.do(t, "POST", tc.path, tc.h, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s; want %d with %s", tc.name, resp.StatusCode, body, tc.status, tc.want)
		}
	}
}

// TestGzipWhenOffered: offered gzip, the fake compresses whole answers and
// streams (each event flushed), like the real APIs; not offered, it does
// not.
func TestGzipWhenOffered(t *testing.T) {
	e := start(t, Config{})
	for _, tc := range []struct {
		offer string
		gzip  bool
	}{{"gzip", true}, {"br, gzip;q=0.5", true}, {"gzip;q=0", false}, {"identity", false}} {
		for _, stream := range []bool{false, true} {
			req, _ := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/v1/chat/completions",
				strings.NewReader(`{"model":"gpt-4o","stream":`+map[bool]string{true: "true", false: "false"}[stream]+`,"messages":[{"role":"user","content":"hi"}]}`))
			req.Header.Set("Authorization", "Bearer "+openAIKey)
			req.Header.Set("Accept-Encoding", tc.offer) // set: the transport does not decode for us
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var r io.Reader = resp.Body
			if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tc.gzip {
				t.Errorf("offer %q: gzip %v, want %v", tc.offer, got, tc.gzip)
			} else if got {
				if r, err = gzip.NewReader(resp.Body); err != nil {
					t.Fatal(err)
				}
			}
			b, err := io.ReadAll(r)
			resp.Body.Close()
			if err != nil || !strings.Contains(string(b), "tok7") {
				t.Errorf("offer %q stream %v: %v, body %q", tc.offer, stream, err, b)
			}
		}
	}
}
