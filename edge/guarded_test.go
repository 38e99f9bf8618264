package edge

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/tunnel"
)

// TestGuardPerKey: a key's own guard replaces the global one, the global
// one applies to every other key, and SetGuard swaps them for the next
// request; refusals name the category and count in the metrics.
func TestGuardPerKey(t *testing.T) {
	strict, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}, Actions: map[string]guard.Action{"cn_mobile": guard.Block}})
	if err != nil {
		t.Fatal(err)
	}
	home, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}, Actions: map[string]guard.Action{"cn_mobile": guard.KeepHome}})
	if err != nil {
		t.Fatal(err)
	}
	r := newEdgeRig(t, Config{Guard: &guard.Set{Default: strict, PerKey: map[string]*guard.Policy{"hr": home}}},
		entry("app", auth.Client{}), entry("hr", auth.Client{}))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call 13812345678"}]}`
	got := r.post(chatPath, "key-of-app", jsonType, body)
	if got.status != 400 || !strings.Contains(got.body, "cn_mobile") || strings.Contains(got.body, "13812345678") {
		t.Fatalf("global block: %d %s", got.status, got.body)
	}
	got = r.post(chatPath, "key-of-hr", jsonType, body)
	if got.status != 403 || !strings.Contains(got.body, "no domestic relay group") {
		t.Fatalf("keep_home without a domestic group: %d %s", got.status, got.body)
	}
	if n := r.counter("strait_guard_finds_total", map[string]string{"category": "cn_mobile", "action": "block"}); n != 1 {
		t.Fatalf("block counted %v times", n)
	}
	r.e.SetGuard(nil)
	if got = r.post(chatPath, "key-of-app", jsonType, body); got.status != 200 {
		t.Fatalf("without a guard: %d %s", got.status, got.body)
	}
}

// TestAuditGuardedBodies: with the audit recording bodies, a request the
// guard blocked is recorded as blocked (reason, counts, size) without its
// body, the very text the guard refused to send; a masked one with the
// masked body that was sent.
func TestAuditGuardedBodies(t *testing.T) {
	p, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile", "cn_id_card"}, Actions: map[string]guard.Action{"cn_id_card": guard.Block}})
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al := audit.Open(audit.Config{Path: auditPath, Bodies: true})
	r := newEdgeRig(t, Config{Audit: al, Guard: &guard.Set{Default: p}}, entry("app", auth.Client{}))
	blocked := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"ID 110101199003071233, call 13812345678"}]}`
	masked := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call 13812345678"}]}`
	if got := r.post(chatPath, "key-of-app", jsonType, blocked); got.status != 400 {
		t.Fatalf("blocked: %d %s", got.status, got.body)
	}
	if got := r.post(chatPath, "key-of-app", jsonType, masked); got.status != 200 {
		t.Fatalf("masked: %d %s", got.status, got.body)
	}
	b := closedAuditFile(t, al, auditPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || strings.Contains(string(b), "110101199003071233") || strings.Contains(string(b), "13812345678") {
		t.Fatalf("audit records hold the values:\n%s", b)
	}
	e := auditEntry(t, []byte(lines[0]))
	if e.Reason != "guard_block" || e.RequestBody != "" || e.BytesIn != int64(len(blocked)) || len(e.Guard) != 2 {
		t.Errorf("blocked request's record: %s", lines[0])
	}
	e = auditEntry(t, []byte(lines[1]))
	if !strings.Contains(e.RequestBody, "call ⟦PHONE_1⟧") {
		t.Errorf("masked request's record: %s", lines[1])
	}
}

// TestGuardRefusalAfterMasking: a request the guard masked and the rate
// limit then refuses still gets its whole error (the restorer holds JSON
// answers until the end, and the end comes).
func TestGuardRefusalAfterMasking(t *testing.T) {
	mask, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	r := newEdgeRig(t, Config{Guard: &guard.Set{Default: mask}}, entry("app", auth.Client{Limits: auth.Limits{RPM: 1}}))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call 13812345678"}]}`
	if got := r.post(chatPath, "key-of-app", jsonType, body); got.status != 200 {
		t.Fatalf("first: %d %s", got.status, got.body)
	}
	got := r.post(chatPath, "key-of-app", jsonType, body)
	if got.status != 429 || !strings.Contains(got.body, "rate limit") {
		t.Fatalf("second: %d %q", got.status, got.body)
	}
}

// TestGuardOutcomeReleasedAfterUse: the guard's rewritten body and vault
// go back to its pool when a request is over, and another request reuses
// them; requests at once, hedged on two sessions, each cross the tunnel
// with their own body and get their own values back, and the relay never
// sees a value. Releasing too early (before the answer is restored, or
// while a copy of the request is still being sent) shows here as another
// request's values or body, or as a data race under -race.
func TestGuardOutcomeReleasedAfterUse(t *testing.T) {
	mask, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	relay := startStubRelay(t)
	phone := regexp.MustCompile(`1[3-9][0-9]{9}`)
	var leaked atomic.Int32
	relay.answer = func(body []byte) []byte { // the request body, as the answer's text
		if phone.Match(body) {
			leaked.Add(1)
		}
		content, _ := json.Marshal(string(body))
		return []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,` +
			`"message":{"role":"assistant","content":` + string(content) + `},"finish_reason":"stop"}],` +
			`"usage":{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}`)
	}
	r := newEdgeRigTo(t, relay, Config{Guard: &guard.Set{Default: mask}, Hedge: forward.HedgeOn, SessionsPerRelay: 2}, entry("app", auth.Client{}))
	request := func(n int) error {
		body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"request %d: call 138%08d, or else 139%08d; again 138%08d"}]}`, n, n, n, n)
		got, err := r.tryPost(chatPath, "key-of-app", jsonType, body)
		if err != nil {
			return err
		}
		var answer struct {
			Choices []struct{ Message struct{ Content string } }
		}
		if err := json.Unmarshal([]byte(got.body), &answer); err != nil || got.status != 200 || len(answer.Choices) != 1 {
			return fmt.Errorf("request %d: %d %s", n, got.status, got.body)
		}
		if c := answer.Choices[0].Message.Content; c != body {
			return fmt.Errorf("request %d came back as\n%s\nnot\n%s", n, c, body)
		}
		return nil
	}
	// One hedged request first: the second session is up.
	hedged := func() int { return r.logs.FilterField(zap.Bool("hedged", true)).Len() }
	for n := 0; hedged() == 0; n++ {
		if n == 1000 {
			t.Fatal("no request was hedged")
		}
		if err := request(n); err != nil {
			t.Fatal(err)
		}
	}
	const clients, each = 6, 30
	errs := make(chan error, clients)
	for c := range clients {
		go func() {
			var err error
			for k := 0; k < each && err == nil; k++ {
				err = request(1000 + c*each + k)
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := leaked.Load(); n > 0 {
		t.Errorf("the relay saw %d request bodies with a phone number in them", n)
	}
}

// TestGuardedAnswerBounded: the guard holds a JSON answer whole to restore
// it, and used to hold any size, out of sight of the client buffer budget.
// Past MaxBodyBytes the answer fails instead, with an error in the calling
// API's own format and nothing of the answer sent.
func TestGuardedAnswerBounded(t *testing.T) {
	mask, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}})
	if err != nil {
		t.Fatal(err)
	}
	relay := startStubRelay(t)
	const limit = 4 << 10
	big := strings.Repeat("y", 2*limit)
	relay.answer = func([]byte) []byte {
		return []byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"` + big + `"}}]}`)
	}
	r := newEdgeRigTo(t, relay, Config{Guard: &guard.Set{Default: mask}, MaxBodyBytes: limit}, entry("app", auth.Client{}))
	for _, tc := range []struct {
		name, path, body string
		want             []string // in the error body
	}{
		{"openai", chatPath, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call 13812345678"}]}`,
			[]string{`{"error":{`, `"type":"server_error"`, `"code":"answer_too_large"`}},
		{"anthropic", messagesPath, `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"call 13812345678"}]}`,
			[]string{`{"type":"error"`, `"type":"api_error"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := r.post(tc.path, "key-of-app", jsonType, tc.body)
			if got.status != 502 || strings.Contains(got.body, "yyyy") || got.header.Get("X-Strait-Error") != "1" ||
				!strings.Contains(got.body, "larger than 4096 bytes") {
				t.Fatalf("%d %v %.200s", got.status, got.header, got.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(got.body, w) {
					t.Errorf("no %s in %s", w, got.body)
				}
			}
			if !json.Valid([]byte(got.body)) {
				t.Fatalf("not one JSON error: %.200s", got.body)
			}
		})
	}
}

// TestAuditKeepHomeBodies: with the audit recording bodies, a keep_home
// request is recorded without its body or its answer, whether it went to
// the domestic relay group or was refused for want of one: it holds the
// values the policy keeps in the country, unmasked.
func TestAuditKeepHomeBodies(t *testing.T) {
	p, err := guard.Compile(&guard.Config{Detectors: []string{"cn_mobile"}, Actions: map[string]guard.Action{"cn_mobile": guard.KeepHome}})
	if err != nil {
		t.Fatal(err)
	}
	const phone = "13812345678"
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"call ` + phone + `"}]}`
	for _, domestic := range []bool{true, false} {
		auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
		al := audit.Open(audit.Config{Path: auditPath, Bodies: true})
		cfg := Config{Audit: al, Guard: &guard.Set{Default: p}}
		want := 403
		if domestic {
			home := startStubRelay(t)
			home.answer = func([]byte) []byte { return []byte(strings.ReplaceAll(stubAnswer, `"hi"`, `"calling `+phone+`"`)) }
			cfg.DomesticRelays, want = []tunnel.Dialer{home.dialer}, 200
		}
		r := newEdgeRig(t, cfg, entry("app", auth.Client{}))
		if got := r.post(chatPath, "key-of-app", jsonType, body); got.status != want {
			t.Fatalf("domestic %v: %d %s", domestic, got.status, got.body)
		}
		b := closedAuditFile(t, al, auditPath)
		e := auditEntry(t, b)
		if strings.Contains(string(b), phone) || e.RequestBody != "" || e.ResponseBody != "" || !e.Domestic ||
			e.BytesIn != int64(len(body)) || len(e.Guard) != 1 || !domestic && e.Reason != "guard_no_domestic" {
			t.Errorf("domestic %v: record %s", domestic, b)
		}
	}
}
