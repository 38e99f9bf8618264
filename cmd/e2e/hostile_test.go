package e2e

import (
	"compress/gzip"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/relay/upstream"
)

// Hostile-tenant tests: one client key attacks what Strait shares between
// its clients (the provider keys, the provider accounts, the meter). Each
// attack runs through the real edge, tunnel and relay against the fake
// provider, and then an innocent client must be served as before.

// rawDo sends one request through the edge with the test client key (hdr
// may replace it) and returns the status, headers and whole body as the
// client received them; a cut stream yields the bytes before the cut.
func rawDo(t *testing.T, s *stack, method, path, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(testCtx(t, 90*time.Second), method, s.edgeURL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+clientKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// keyStates returns the relay's key states, provider → state, from its
// metrics (the way an operator sees them).
func keyStates(t *testing.T, s *stack) map[string]string {
	t.Helper()
	_, metrics := adminGet(t, s.relayAdmin, "/metrics")
	out := map[string]string{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "strait_relay_upstream_key_state{") || !strings.HasSuffix(line, "} 1") {
			continue
		}
		labels := line[strings.IndexByte(line, '{')+1 : strings.LastIndexByte(line, '}')]
		var provider, state string
		for _, kv := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "provider":
				provider = strings.Trim(v, `"`)
			case "state":
				state = strings.Trim(v, `"`)
			}
		}
		out[provider] = state
	}
	return out
}

const (
	hostileChat   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	hostileGemini = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
)

// TestHostileTenantCannotDisableProviderKeys: requests whose 401/403 the
// client itself causes (an organization or project header naming another
// account, a Gemini file of another project) must reach the client as the
// provider's own answer, cost one attempt, and leave the shared keys
// healthy; the account headers are dropped unless the provider allows them.
func TestHostileTenantCannotDisableProviderKeys(t *testing.T) {
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		// The openai provider lets clients choose their organization (an
		// operator's choice); deepseek (same fake) keeps the default.
		f.Providers[0].AllowHeaders = append(f.Providers[0].AllowHeaders, "OpenAI-Organization")
	}})
	foreignAccount := map[string]string{"OpenAI-Organization": "org-evil", "OpenAI-Project": "proj_evil",
		"X-Goog-User-Project": "evil-project", "X-Unknown-Extension": "1"}

	t.Run("account headers are dropped by default", func(t *testing.T) {
		s.fake.Reset()
		status, _, body := rawDo(t, s, "POST", "/deepseek/v1/chat/completions", hostileChat, foreignAccount)
		got := s.fake.Requests()
		if status != 200 || len(got) != 1 {
			t.Fatalf("status %d after %d upstream requests: %s", status, len(got), body)
		}
		for k := range foreignAccount {
			if v := got[0].Header.Get(k); v != "" {
				t.Errorf("%s: %q reached the provider", k, v)
			}
		}
	})
	for _, tc := range []struct {
		name, path, body string
		hdr              map[string]string
		status           int
		want             string // in the client's body: the provider's own error
	}{
		{"allowed organization header naming another org", "/v1/chat/completions", hostileChat,
			map[string]string{"OpenAI-Organization": "org-evil"}, 401, `"code":"mismatched_organization"`},
		{"gemini file of another project", "/v1beta/models/gemini-2.5-flash:generateContent",
			`{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"text/plain","fileUri":"https://generativelanguage.googleapis.com/v1beta/files/someone-elses"}}]}]}`,
			nil, 403, `"status":"PERMISSION_DENIED"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range 3 { // again and again: still no effect on the keys
				s.fake.Reset()
				status, _, body := rawDo(t, s, "POST", tc.path, tc.body, tc.hdr)
				if status != tc.status || !strings.Contains(body, tc.want) {
					t.Fatalf("attack %d: status %d %s; want the provider's %d with %s", i, status, body, tc.status, tc.want)
				}
				if n := len(s.fake.Requests()); n != 1 {
					t.Fatalf("attack %d: %d upstream attempts; a client-caused %d must not rotate keys", i, n, tc.status)
				}
			}
		})
	}
	// An innocent client of every family is served at once.
	for _, c := range []struct{ path, body string }{
		{"/v1/chat/completions", hostileChat}, {"/deepseek/v1/chat/completions", hostileChat},
		{"/v1beta/models/gemini-2.5-flash:generateContent", hostileGemini},
	} {
		if status, _, body := rawDo(t, s, "POST", c.path, c.body, nil); status != 200 {
			t.Errorf("innocent client on %s after the attacks: %d %s", c.path, status, body)
		}
	}
	for p, st := range keyStates(t, s) {
		if st != upstream.Healthy.String() {
			t.Errorf("provider %s key is %s after client-caused errors", p, st)
		}
	}
}

// TestFineTunedModelGoesToOpenAI: GET /v1/models/ft:… names an OpenAI
// fine-tuned model; its colons must not make it a Gemini {model}:{method}
// call sent to Gemini with the Gemini key.
func TestFineTunedModelGoesToOpenAI(t *testing.T) {
	s := newStack(t, stackOptions{})
	const id = "ft:gpt-4o-mini-2024-07-18:acme::AbC123"
	status, _, body := rawDo(t, s, "GET", "/v1/models/"+id, "", nil)
	got := s.fake.Requests()
	if status != 200 || len(got) != 1 || !strings.Contains(body, `"id":"`+id+`"`) {
		t.Fatalf("status %d, %d upstream requests: %s", status, len(got), body)
	}
	if got[0].Family != "openai" || got[0].Header.Get("Authorization") != "Bearer "+providerKeys.OpenAI || got[0].Header.Get("X-Goog-Api-Key") != "" {
		t.Fatalf("went upstream as %s; Authorization set: %v, X-Goog-Api-Key set: %v", got[0].Family,
			got[0].Header.Get("Authorization") != "", got[0].Header.Get("X-Goog-Api-Key") != "")
	}
}

// TestErrorsHideProviderAddress: when a provider cannot be reached, the
// client learns that, not the provider's base URL or address; the relay's
// log keeps them for the operator.
func TestErrorsHideProviderAddress(t *testing.T) {
	const dead = "http://127.0.0.1:1" // nothing listens on port 1
	s := newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.Providers = append(f.Providers, relaycmd.ProviderFile{Name: "dead", Kind: "openai-compatible", BaseURL: dead,
			APIKeys: []string{providerKeys.OpenAI}})
	}})
	status, _, body := rawDo(t, s, "POST", "/dead/v1/chat/completions", hostileChat, nil)
	if status < 500 || !strings.Contains(body, "connection refused") {
		t.Fatalf("status %d %s; want a 5xx saying the connection was refused", status, body)
	}
	for _, leak := range []string{"127.0.0.1", "http://", ":1/"} {
		if strings.Contains(body, leak) {
			t.Errorf("the client's error names the provider's address (%s): %s", leak, body)
		}
	}
	if n := s.relayLogs.FilterFieldKey("error").Filter(func(e observer.LoggedEntry) bool {
		return strings.Contains(e.ContextMap()["error"].(string), "127.0.0.1:1")
	}).Len(); n == 0 {
		t.Error("the relay's log does not name the address it failed to reach")
	}
}

// TestCompressedAnswersAreMetered: a client that offers gzip (the Python
// SDKs do by default) must not make the provider compress what the edge
// has to read: output is billed in full and the usage chunk the edge asked
// for on the client's behalf is not leaked. The provider sees the relay's
// own Accept-Encoding, never the client's.
func TestCompressedAnswersAreMetered(t *testing.T) {
	s := newStack(t, stackOptions{})
	const offer = "gzip, deflate, br"
	for _, tc := range []struct{ name, body string }{
		{"stream", `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`},
		{"whole", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.fake.Reset()
			status, h, body := rawDo(t, s, "POST", "/v1/chat/completions", tc.body, map[string]string{"Accept-Encoding": offer})
			if h.Get("Content-Encoding") == "gzip" { // the edge may compress for the client; read it as the SDK would
				zr, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(zr)
				if err != nil {
					t.Fatal(err)
				}
				body = string(b)
			}
			if status != 200 || !strings.Contains(body, "tok7") {
				t.Fatalf("status %d, body %q", status, body)
			}
			if strings.Contains(body, `"usage":{`) && strings.Contains(tc.body, `"stream":true`) {
				t.Errorf("the usage chunk the edge asked for reached a client that did not ask for it:\n%s", body)
			}
			got := s.fake.Requests()
			if len(got) != 1 || got[0].Header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("the provider saw Accept-Encoding %q; want the relay's own gzip, never the client's %q",
					got[0].Header.Get("Accept-Encoding"), offer)
			}
		})
	}
	// The edge records a request's usage after its last byte went out.
	waitFor(t, "both requests' usage", func() bool { return len(usageReport(t, s, "key=test-app").Rows) >= 2 })
	rep := usageReport(t, s, "key=test-app")
	for _, row := range rep.Rows {
		if row.Usage.Output != 8 || row.Estimated != 0 {
			t.Errorf("%s billed %+v (estimated %d); want the 8 output tokens the provider reported", row.Model, row.Usage, row.Estimated)
		}
	}
	if len(rep.Rows) != 2 {
		t.Errorf("usage rows %+v, want one per model", rep.Rows)
	}
}

// TestAccountEndpointsArePerKey: the provider account behind a shared key
// holds files (and batches, tuned models, stored responses) for every
// client. A key without the permission cannot list, read or delete what
// another key uploaded, nor reach the other account-level endpoints; a key
// whose config names the class can. The relay refuses what its own config
// does not serve, whatever the edge let through.
func TestAccountEndpointsArePerKey(t *testing.T) {
	const filesKey = "strait-files-key-0123456789"
	addSecret(filesKey, "client key files-app")
	s := newStack(t, stackOptions{
		relayTLSEdit: func(f *relaycmd.File) { f.Endpoints = []string{"files"} },
		edgeEdit: func(f *edgecmd.File) {
			f.ClientKeys = append(f.ClientKeys,
				edgecmd.ClientKey{Name: "files-app", Key: filesKey, Endpoints: []string{"files"}},
				edgecmd.ClientKey{Name: "batch-app", Key: filesKey + "-batch", Endpoints: []string{"batches"}})
			addSecret(filesKey+"-batch", "client key batch-app")
		},
	})
	asFiles := map[string]string{"Authorization": "Bearer " + filesKey}

	var form strings.Builder
	mw := multipart.NewWriter(&form)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "private.jsonl")
	_, _ = fw.Write([]byte(`{"secret":"tenant A"}` + "\n"))
	_ = mw.Close()
	upload := map[string]string{"Authorization": "Bearer " + filesKey, "Content-Type": mw.FormDataContentType()}
	status, _, body := rawDo(t, s, "POST", "/v1/files", form.String(), upload)
	if status != 200 || !strings.Contains(body, `"id":"file-fake`) {
		t.Fatalf("upload with the files permission: %d %s", status, body)
	}
	id := body[strings.Index(body, `"id":"`)+6:]
	id = id[:strings.IndexByte(id, '"')]

	s.fake.Reset()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/files", ""},
		{"GET", "/v1/files/" + id, ""},
		{"DELETE", "/v1/files/" + id, ""},
		{"POST", "/v1/files", form.String()},
		{"GET", "/v1/batches", ""},
		{"DELETE", "/v1/models/ft:gpt-4o-mini-2024-07-18:acme::AbC123", ""},
		{"GET", "/v1/chat/completions", ""},
		{"GET", "/v1/responses/resp_123", ""},
		{"DELETE", "/v1/responses/resp_123", ""},
		{"POST", "/v1/fine_tuning/jobs", `{"model":"gpt-4o-mini","training_file":"` + id + `"}`},
		{"GET", "/v1beta/files", ""},
		{"GET", "/v1beta/cachedContents", ""},
	} {
		status, _, body := rawDo(t, s, tc.method, tc.path, tc.body, nil)
		if status != 403 || !strings.Contains(body, "endpoint_not_allowed") && !strings.Contains(body, "PERMISSION_DENIED") {
			t.Errorf("default key %s %s: %d %s; want 403 in the family's format", tc.method, tc.path, status, body)
		}
	}
	if got := s.fake.Requests(); len(got) != 0 {
		t.Fatalf("%d refused requests reached the provider (first %s %s)", len(got), got[0].Method, got[0].Path)
	}

	// The relay's second line: batches are allowed for batch-app at the
	// edge, but the relay's config serves files only.
	status, _, body = rawDo(t, s, "GET", "/v1/batches", "", map[string]string{"Authorization": "Bearer " + filesKey + "-batch"})
	if status != 403 || !strings.Contains(body, "Strait relay: batches endpoints are not served") {
		t.Errorf("batches through a relay that does not serve them: %d %s", status, body)
	}

	status, _, body = rawDo(t, s, "GET", "/v1/files", "", asFiles)
	if status != 200 || !strings.Contains(body, id) {
		t.Fatalf("list with the files permission: %d %s", status, body)
	}
	if status, _, body = rawDo(t, s, "DELETE", "/v1/files/"+id, "", asFiles); status != 200 || !strings.Contains(body, `"deleted":true`) {
		t.Fatalf("delete with the files permission: %d %s", status, body)
	}
	// Inference stays open to every key.
	if status, _, body := rawDo(t, s, "POST", "/v1/chat/completions", hostileChat, nil); status != 200 {
		t.Fatalf("chat with the default key: %d %s", status, body)
	}
}
