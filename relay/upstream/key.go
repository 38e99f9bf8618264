package upstream

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Key is a provider API key. It cannot be printed: every formatting path
// (fmt verbs, zap's Stringer, JSON) yields only a short fingerprint, so a key
// that slips into a log line or an error message leaks nothing usable.
type Key struct {
	// The secret sits behind a *string: fmt does not call Format on a Key
	// held in an unexported field (Provider.keys), but it prints a nested
	// *string as an address, never what it points to.
	secret *string
	// fingerprint is Fingerprint, computed once: the relay logs it with
	// every upstream attempt.
	fingerprint string
}

// NewKey wraps a secret.
func NewKey(secret string) Key { return Key{secret: &secret, fingerprint: fingerprintOf(secret)} }

// Reveal returns the secret, for the one place that sets the upstream
// header.
func (k Key) Reveal() string {
	if k.secret == nil {
		return ""
	}
	return *k.secret
}

// Fingerprint is the first 8 hex digits of the key's SHA-256: enough to tell
// keys apart in logs, useless to an attacker.
func (k Key) Fingerprint() string {
	if k.fingerprint == "" { // the zero Key
		return fingerprintOf(k.Reveal())
	}
	return k.fingerprint
}

func fingerprintOf(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

// String implements fmt.Stringer without revealing the secret.
func (k Key) String() string { return "key:" + k.Fingerprint() }

// Format implements fmt.Formatter so %v, %+v, %#v, %s and %q are all safe.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML) safely.
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }
