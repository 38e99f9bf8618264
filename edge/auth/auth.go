// Package auth maps client API keys to clients. Keys are kept only as
// SHA-256 digests, so a memory dump or a debug print of the edge's state
// holds no usable key, and lookups do not compare secrets byte by byte.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// Client is an authenticated caller.
type Client struct {
	Name string
}

// KeySpec is one configured client key.
type KeySpec struct {
	Name string
	Key  string // the secret as configured; only its digest is retained
}

// Keys is an immutable set of client keys.
type Keys struct {
	byDigest map[[sha256.Size]byte]Client
}

// MinKeyLength rejects keys short enough to guess.
const MinKeyLength = 16

// NewKeys validates and indexes specs.
func NewKeys(specs []KeySpec) (*Keys, error) {
	k := &Keys{byDigest: make(map[[sha256.Size]byte]Client, len(specs))}
	for i, s := range specs {
		if s.Name == "" {
			return nil, fmt.Errorf("client key %d: name is required", i)
		}
		if len(s.Key) < MinKeyLength {
			return nil, fmt.Errorf("client key %q: shorter than %d characters", s.Name, MinKeyLength)
		}
		d := sha256.Sum256([]byte(s.Key))
		if prev, dup := k.byDigest[d]; dup {
			return nil, fmt.Errorf("client keys %q and %q are the same key", prev.Name, s.Name)
		}
		k.byDigest[d] = Client{Name: s.Name}
	}
	if len(k.byDigest) == 0 {
		return nil, errors.New("no client keys configured")
	}
	return k, nil
}

// Lookup returns the client owning key. Hashing first means the map lookup's
// timing depends on the digest, never on how much of the key was right.
func (k *Keys) Lookup(key string) (Client, bool) {
	if key == "" {
		return Client{}, false
	}
	c, ok := k.byDigest[sha256.Sum256([]byte(key))]
	return c, ok
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.byDigest) }

// Fingerprint identifies a key in logs without revealing it.
func Fingerprint(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:4])
}
