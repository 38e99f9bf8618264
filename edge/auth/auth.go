// Package auth maps client API keys to clients and their policy. Keys are
// kept only as SHA-256 digests, so a memory dump or a debug print of the
// edge's state holds no usable key, and lookups do not compare secrets byte
// by byte.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"time"
)

// Limits are a client's rate limits, quotas and budgets. Zero means no
// limit for each field.
type Limits struct {
	RPM           int64   `json:"rpm,omitempty" yaml:"rpm"`                       // requests per minute
	TPM           int64   `json:"tpm,omitempty" yaml:"tpm"`                       // tokens per minute
	DailyTokens   int64   `json:"daily_tokens,omitempty" yaml:"daily_tokens"`     // per UTC day
	MonthlyTokens int64   `json:"monthly_tokens,omitempty" yaml:"monthly_tokens"` // per UTC month
	DailyBudget   float64 `json:"daily_budget,omitempty" yaml:"daily_budget"`     // USD per UTC day
	MonthlyBudget float64 `json:"monthly_budget,omitempty" yaml:"monthly_budget"` // USD per UTC month
}

// Client is an authenticated caller and its policy.
type Client struct {
	Name string
	// Models are path.Match patterns ("gpt-4o*", "claude-*"); empty allows
	// every model.
	Models []string
	// Expires is when the key stops working; zero means never.
	Expires  time.Time
	Disabled bool
	Limits   Limits
	// Endpoints are the endpoint classes (llmapi.EndpointClasses) the key
	// may use beyond inference, which is always allowed: "files",
	// "batches", "fine_tuning", "stored", "assistants", "media" or "all".
	// Empty allows inference only: the other classes reach what the shared
	// provider account holds for every client.
	Endpoints []string
}

// Errors from Client.Usable.
var (
	ErrDisabled = errors.New("this Strait client key is disabled")
	ErrExpired  = errors.New("this Strait client key has expired")
)

// Usable reports whether the key may be used at now.
func (c Client) Usable(now time.Time) error {
	switch {
	case c.Disabled:
		return ErrDisabled
	case !c.Expires.IsZero() && !now.Before(c.Expires):
		return ErrExpired
	}
	return nil
}

// Allows reports whether the client may call model. A request without a
// model (listing models, for example) is allowed.
func (c Client) Allows(model string) bool {
	if len(c.Models) == 0 || model == "" {
		return true
	}
	for _, p := range c.Models {
		if ok, _ := path.Match(p, model); ok {
			return true
		}
	}
	return false
}

// Digest is the SHA-256 of a key: all the edge ever keeps of it.
type Digest [sha256.Size]byte

// DigestOf hashes a key.
func DigestOf(key string) Digest { return sha256.Sum256([]byte(key)) }

// String is the digest in hex, the form stored in the keys file.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest reads a hex digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("key digest %q: want %d hex characters", s, 2*len(d))
	}
	copy(d[:], b)
	return d, nil
}

// Entry is one known key: its digest and its client.
type Entry struct {
	Digest Digest
	Client Client
}

// KeySpec is one configured client key.
type KeySpec struct {
	Name string
	Key  string // the secret as configured; only its digest is retained
}

// Keys is an immutable set of client keys. To change the set, build a new
// one and swap it in (the edge holds it behind an atomic pointer).
type Keys struct {
	byDigest map[Digest]Client
}

// MinKeyLength rejects keys short enough to guess.
const MinKeyLength = 16

// NewKeys validates and indexes specs; at least one is required.
func NewKeys(specs []KeySpec) (*Keys, error) {
	entries := make([]Entry, 0, len(specs))
	for i, s := range specs {
		if s.Name == "" {
			return nil, fmt.Errorf("client key %d: name is required", i)
		}
		if len(s.Key) < MinKeyLength {
			return nil, fmt.Errorf("client key %q: shorter than %d characters", s.Name, MinKeyLength)
		}
		entries = append(entries, Entry{Digest: DigestOf(s.Key), Client: Client{Name: s.Name}})
	}
	if len(entries) == 0 {
		return nil, errors.New("no client keys configured")
	}
	return NewKeySet(entries)
}

// NewKeySet indexes entries, which may be empty. Names must be unique, since
// usage and limits are kept per name.
func NewKeySet(entries []Entry) (*Keys, error) {
	k := &Keys{byDigest: make(map[Digest]Client, len(entries))}
	names := make(map[string]bool, len(entries))
	for i, e := range entries {
		if e.Client.Name == "" {
			return nil, fmt.Errorf("client key %d: name is required", i)
		}
		if prev, dup := k.byDigest[e.Digest]; dup {
			return nil, fmt.Errorf("client keys %q and %q are the same key", prev.Name, e.Client.Name)
		}
		if names[e.Client.Name] {
			return nil, fmt.Errorf("client key name %q is used twice", e.Client.Name)
		}
		names[e.Client.Name] = true
		k.byDigest[e.Digest] = e.Client
	}
	return k, nil
}

// Lookup returns the client owning key. Hashing first means the map lookup's
// timing depends on the digest, never on how much of the key was right.
func (k *Keys) Lookup(key string) (Client, bool) {
	if key == "" {
		return Client{}, false
	}
	c, ok := k.byDigest[DigestOf(key)]
	return c, ok
}

// Clients lists the clients, in no particular order.
func (k *Keys) Clients() []Client {
	out := make([]Client, 0, len(k.byDigest))
	for _, c := range k.byDigest {
		out = append(out, c)
	}
	return out
}

// Len is the number of keys.
func (k *Keys) Len() int { return len(k.byDigest) }

// Fingerprint identifies a key in logs without revealing it.
func Fingerprint(key string) string {
	d := DigestOf(key)
	return hex.EncodeToString(d[:4])
}
