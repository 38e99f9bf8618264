package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
)

// ErrRevoked is the handshake error for a certificate on a Revocations
// list.
var ErrRevoked = errors.New("certificate revoked")

// Revocations refuses peer certificates by fingerprint, though they chain
// to the CA: the way to shut out one edge whose key leaked without
// replacing the CA. The zero value refuses nothing. Set swaps the whole
// list; handshakes from then on see the new one. Safe for concurrent use.
type Revocations struct {
	set atomic.Pointer[map[string]bool]
}

// fingerprintLen is the length of the short form that logs print
// (Fingerprint); a list entry is either that or the full SHA-256 in hex.
const fingerprintLen = 16

// ParseFingerprints normalises list entries: hex, upper or lower case,
// colons allowed, either the full SHA-256 of the certificate (64
// characters) or the 16-character form the logs print.
func ParseFingerprints(entries []string) (map[string]bool, error) {
	set := make(map[string]bool, len(entries))
	for _, e := range entries {
		fp := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(e), ":", ""))
		if _, err := hex.DecodeString(fp); err != nil || (len(fp) != fingerprintLen && len(fp) != 2*sha256.Size) {
			return nil, fmt.Errorf("fingerprint %q: want the certificate's SHA-256 in hex (64 characters, or the first 16 as logged)", e)
		}
		set[fp] = true
	}
	return set, nil
}

// Set replaces the list; on an invalid entry nothing changes.
func (r *Revocations) Set(entries []string) error {
	set, err := ParseFingerprints(entries)
	if err != nil {
		return err
	}
	r.set.Store(&set)
	return nil
}

// Len is the number of entries in the list.
func (r *Revocations) Len() int {
	if p := r.set.Load(); p != nil {
		return len(*p)
	}
	return 0
}

// VerifyConnection refuses a handshake whose peer certificate is on the
// list; use it as tls.Config.VerifyConnection. The chain itself is
// verified before it runs.
func (r *Revocations) VerifyConnection(cs tls.ConnectionState) error {
	p := r.set.Load()
	if p == nil || len(*p) == 0 || len(cs.PeerCertificates) == 0 {
		return nil
	}
	sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
	full := hex.EncodeToString(sum[:])
	if (*p)[full] || (*p)[full[:fingerprintLen]] {
		return fmt.Errorf("%w (fingerprint %s is on the revocation list)", ErrRevoked, full[:fingerprintLen])
	}
	return nil
}
