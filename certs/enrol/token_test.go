package enrol

import (
	"strings"
	"testing"
	"time"
)

// TestToken: a token survives encoding on one line; damaged or incomplete
// ones are refused with what is wrong.
func TestToken(t *testing.T) {
	good := Token{Relays: []string{"relay.example.com:443", "[2001:db8::1]:443"}, CAFingerprint: strings.Repeat("0a", 32),
		Secret: NewSecret(), Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s := good.String()
	if strings.ContainsAny(s, " \n'\"$") {
		t.Fatalf("token %q is not shell- and copy-safe", s)
	}
	got, err := ParseToken("  " + s + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != good.Secret || got.CAFingerprint != good.CAFingerprint || !got.Expires.Equal(good.Expires) || len(got.Relays) != 2 {
		t.Fatalf("round trip: %+v", got)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"no prefix", "eyJ9", "want a line starting with"},
		{"cut short", s[:len(s)-10], "damaged"},
		{"no relay", Token{CAFingerprint: good.CAFingerprint, Secret: "x", Expires: good.Expires}.String(), "no relay address"},
		{"bad address", Token{Relays: []string{"relay"}, CAFingerprint: good.CAFingerprint, Secret: "x", Expires: good.Expires}.String(), "want host:port"},
		{"short fingerprint", Token{Relays: good.Relays, CAFingerprint: "abcd", Secret: "x", Expires: good.Expires}.String(), "64 hex"},
		{"no secret", Token{Relays: good.Relays, CAFingerprint: good.CAFingerprint, Expires: good.Expires}.String(), "no enrolment secret"},
	} {
		if _, err := ParseToken(tc.token); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an error containing %q", tc.name, err, tc.want)
		}
	}
	if SecretDigest(good.Secret) == good.Secret || len(SecretID(good.Secret)) != 8 {
		t.Error("digest or id reveal the secret")
	}
}
