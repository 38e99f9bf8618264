// Package enrol is what an edge and a relay share to enrol an edge with one
// line: the join token, the wire format of the enrolment endpoint on the
// relay's TLS port, and the edge's client for it.
//
// The token carries the relay addresses, the SHA-256 fingerprint of the
// tunnel CA (which pins the relay: no CA file has to be copied) and a
// one-time secret with its expiry. It never carries a key. The edge makes
// its key pair locally and sends only a certificate request; the relay
// signs it after checking the secret, which it stores hashed and accepts
// once.
package enrol

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// tokenPrefix starts every join token; the digit is the format version.
const tokenPrefix = "strait1."

// Token is what an edge needs to enrol with a relay.
type Token struct {
	// Relays are host:port addresses of the relay's TLS (WebSocket) port;
	// QUIC is served on the same port.
	Relays []string `json:"relays"`
	// CAFingerprint is the SHA-256 of the tunnel CA certificate in hex.
	CAFingerprint string `json:"ca_sha256"`
	// Secret is the one-time enrolment secret.
	Secret string `json:"secret"`
	// Expires is when the relay stops accepting Secret.
	Expires time.Time `json:"expires"`
}

// NewSecret returns a fresh enrolment secret: 256 random bits, base64url.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crashes instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SecretDigest is what a relay stores instead of the secret: the SHA-256
// in hex. The secret has 256 random bits, so a plain hash is enough.
func SecretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretID is a short, public name of a secret for logs and listings (the
// first 8 hex characters of its digest), which reveals nothing usable.
func SecretID(secret string) string { return SecretDigest(secret)[:8] }

// String encodes the token as one line that survives copy and paste and
// shells: "strait1." and base64url JSON.
func (t Token) String() string {
	data, _ := json.Marshal(t) // plain strings and a time: cannot fail
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(data)
}

// ParseToken decodes and checks a token; surrounding white space is
// ignored. An expired token parses (the relay has the last word on
// expiry, and its reason is clearer), but a malformed one does not.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix) {
		return Token{}, fmt.Errorf("join token: want a line starting with %q (from `strait-relay init` or `strait-relay edges token`)", tokenPrefix)
	}
	data, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, tokenPrefix))
	if err != nil {
		return Token{}, fmt.Errorf("join token: damaged (copy it again in one piece): %w", err)
	}
	var t Token
	if err := json.Unmarshal(data, &t); err != nil {
		return Token{}, fmt.Errorf("join token: damaged (copy it again in one piece): %w", err)
	}
	return t, t.check()
}

func (t Token) check() error {
	var errs []error
	if len(t.Relays) == 0 {
		errs = append(errs, errors.New("no relay address"))
	}
	for _, a := range t.Relays {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("relay address %q: want host:port", a))
		}
	}
	if b, err := hex.DecodeString(t.CAFingerprint); err != nil || len(b) != sha256.Size {
		errs = append(errs, errors.New("CA fingerprint: want 64 hex characters"))
	}
	if t.Secret == "" {
		errs = append(errs, errors.New("no enrolment secret"))
	}
	if t.Expires.IsZero() {
		errs = append(errs, errors.New("no expiry"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	return nil
}

// OutboundIP is the address this machine reaches the Internet from, for
// defaults when none is given. It sends no packet: connecting a UDP socket
// only asks the kernel for a route (to TEST-NET-1, routed like the
// Internet and never answered).
func OutboundIP() (net.IP, error) {
	c, err := net.Dial("udp", "192.0.2.1:443")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}
