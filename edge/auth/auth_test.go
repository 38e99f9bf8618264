package auth

import (
	"fmt"
	"strings"
	"testing"
)

const (
	keyA = "sk-alpha-0123456789abcdef"
	keyB = "sk-bravo-0123456789abcdef"
)

// TestNewKeysValidation proves that a config with a nameless, short,
// duplicated or missing key is refused instead of half-working.
func TestNewKeysValidation(t *testing.T) {
	tests := []struct {
		name    string
		specs   []KeySpec
		wantErr string // substring; "" means success
	}{
		{"ok", []KeySpec{{"a", keyA}, {"b", keyB}}, ""},
		{"exactly min length", []KeySpec{{"a", strings.Repeat("k", MinKeyLength)}}, ""},
		{"empty name", []KeySpec{{"", keyA}}, "name is required"},
		{"short key", []KeySpec{{"a", strings.Repeat("k", MinKeyLength-1)}}, "shorter than"},
		{"empty key", []KeySpec{{"a", ""}}, "shorter than"},
		{"duplicate key", []KeySpec{{"a", keyA}, {"b", keyA}}, "same key"},
		{"none", nil, "no client keys"},
		{"empty slice", []KeySpec{}, "no client keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := NewKeys(tc.specs)
			if tc.wantErr == "" {
				if err != nil || k == nil || k.Len() != len(tc.specs) {
					t.Fatalf("NewKeys = %v, %v; want %d keys", k, err, len(tc.specs))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewKeys err = %v, want containing %q", err, tc.wantErr)
			}
			if k != nil {
				t.Errorf("NewKeys returned keys alongside error %v", err)
			}
			for _, s := range tc.specs {
				if s.Key != "" && strings.Contains(err.Error(), s.Key) {
					t.Errorf("error %q reveals a key", err)
				}
			}
		})
	}
}

// TestLookup proves only an exact configured key authenticates, and to the
// right client.
func TestLookup(t *testing.T) {
	k, err := NewKeys([]KeySpec{{"alice", keyA}, {"bob", keyB}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		key    string
		ok     bool
		client string
	}{
		{keyA, true, "alice"},
		{keyB, true, "bob"},
		{"", false, ""},
		{keyA[:len(keyA)-1], false, ""},
		{keyA + "x", false, ""},
		{strings.ToUpper(keyA), false, ""},
		{" " + keyA, false, ""},
	}
	for _, tc := range tests {
		c, ok := k.Lookup(tc.key)
		if ok != tc.ok || c.Name != tc.client {
			t.Errorf("Lookup(%q) = %+v, %v; want %q, %v", tc.key, c, ok, tc.client, tc.ok)
		}
	}
}

// TestKeysHoldNoPlaintext proves a debug print of the key set reveals no
// configured key, in any fmt verb.
func TestKeysHoldNoPlaintext(t *testing.T) {
	k, err := NewKeys([]KeySpec{{"alice", keyA}, {"bob", keyB}})
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%#v", "%+v", "%v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, *k) + fmt.Sprintf(verb, k)
		for _, secret := range []string{keyA, keyB, fmt.Sprintf("%x", keyA), fmt.Sprintf("%x", keyB)} {
			if strings.Contains(out, secret) {
				t.Errorf("fmt %s of Keys contains a plaintext key: %s", verb, out)
			}
		}
	}
}

// TestFingerprint proves fingerprints are short, stable, distinct per key
// and not the key.
func TestFingerprint(t *testing.T) {
	a, b := Fingerprint(keyA), Fingerprint(keyB)
	if len(a) != 8 || a != Fingerprint(keyA) || a == b || strings.Contains(keyA, a) {
		t.Errorf("Fingerprint(%q) = %q, Fingerprint(%q) = %q", keyA, a, keyB, b)
	}
}
