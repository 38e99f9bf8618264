package edge

import (
	"strings"
	"testing"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/guard"
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
