package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const secret = "sk-live-SECRET-0123456789"

// TestKeyRedactedFmt proves no fmt verb prints the secret, whether the Key
// is printed alone, through a pointer, in a slice, or inside a struct (in an
// exported or unexported field, where fmt skips the Formatter), and that
// each output names the fingerprint instead.
func TestKeyRedactedFmt(t *testing.T) {
	k := NewKey(secret)
	type holder struct {
		Exported   Key
		unexported Key
		list       []Key
	}
	r, err := NewRegistry([]ProviderConfig{{Name: "p", Kind: OpenAI, BaseURL: "https://p.example", Keys: []Key{k}}})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]any{
		"key":      k,
		"pointer":  &k,
		"slice":    []Key{k, k},
		"holder":   holder{Exported: k, unexported: k, list: []Key{k}},
		"holder*":  &holder{Exported: k, unexported: k},
		"config":   ProviderConfig{Name: "p", Keys: []Key{k}},
		"provider": r.byName["p"],
		"registry": r,
		"map":      map[string]Key{"a": k},
	}
	for name, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) || strings.Contains(strings.ToLower(out), fmt.Sprintf("%x", secret)) {
				t.Errorf("fmt %s of %s reveals the secret: %s", verb, name, out)
			}
			if name == "key" && !strings.Contains(out, k.Fingerprint()) {
				t.Errorf("fmt %s of key = %s, want the fingerprint %s", verb, out, k.Fingerprint())
			}
		}
	}
	if err := fmt.Errorf("using %v", k); strings.Contains(err.Error(), secret) {
		t.Errorf("error message reveals the secret: %v", err)
	}
}

// TestKeyRedactedZap proves a Key logged through zap (Any, Stringer,
// Reflect) shows only its fingerprint, both in the observed fields and in
// the JSON a production encoder writes.
func TestKeyRedactedZap(t *testing.T) {
	k := NewKey(secret)
	core, logs := observer.New(zapcore.DebugLevel)
	var buf bytes.Buffer
	jsonCore := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, jsonCore))
	log.Info("k", zap.Any("any", k), zap.Stringer("stringer", k), zap.Reflect("reflect", k),
		zap.Any("slice", []Key{k}), zap.Any("ptr", &k), zap.Any("cfg", ProviderConfig{Name: "p", Keys: []Key{k}}))
	_ = log.Sync()

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("%d log entries", len(entries))
	}
	for field, v := range entries[0].ContextMap() {
		out := fmt.Sprintf("%v", v)
		if strings.Contains(out, secret) {
			t.Errorf("zap field %s reveals the secret: %s", field, out)
		}
		if !strings.Contains(out, k.Fingerprint()) {
			t.Errorf("zap field %s = %s, want the fingerprint", field, out)
		}
	}
	if out := buf.String(); strings.Contains(out, secret) || strings.Count(out, k.Fingerprint()) < 6 {
		t.Errorf("JSON log line = %s, want 6 fingerprints and no secret", out)
	}
}

// TestKeyRedactedJSON proves json.Marshal of structures holding a Key emits
// only the fingerprint.
func TestKeyRedactedJSON(t *testing.T) {
	k := NewKey(secret)
	v := struct {
		K    Key
		P    *Key
		List []Key
		Map  map[string]Key
		Cfg  ProviderConfig
	}{k, &k, []Key{k}, map[string]Key{"a": k}, ProviderConfig{Keys: []Key{k}}}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) || strings.Count(string(b), k.Fingerprint()) != 5 {
		t.Errorf("json = %s, want 5 fingerprints and no secret", b)
	}
}

// TestKeyFingerprint proves fingerprints are stable, 8 hex digits, tell
// keys apart and cost nothing to read, while Reveal still returns the
// secret for the header.
func TestKeyFingerprint(t *testing.T) {
	a, b := NewKey(secret), NewKey(secret+"x")
	if fa := a.Fingerprint(); len(fa) != 8 || fa != NewKey(secret).Fingerprint() || fa == b.Fingerprint() {
		t.Errorf("fingerprints %q %q", fa, b.Fingerprint())
	}
	if a.Reveal() != secret {
		t.Errorf("Reveal() = %q", a.Reveal())
	}
	// The relay logs it with every upstream attempt: computed once.
	if n := testing.AllocsPerRun(100, func() { _ = a.Fingerprint() }); n != 0 {
		t.Errorf("Fingerprint allocated %v times", n)
	}
	if z := (Key{}).Fingerprint(); z != NewKey("").Fingerprint() || len(z) != 8 {
		t.Errorf("the zero Key's fingerprint %q; want that of an empty secret", z)
	}
}
