// Package enrol is the relay's side of edge enrolment: the store of
// one-time join secrets (hashed) and enrolled edges, the HTTP endpoint that
// signs an edge's certificate request on the tunnel's TLS port, the
// revocation check that reads the store on each handshake, and `init`,
// which sets a relay up from nothing.
package enrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
)

// StoreFile is the store's usual file name, beside relay.yaml.
const StoreFile = "edges.json"

// TokenRecord is one enrolment secret, by its digest only.
type TokenRecord struct {
	ID      string    `json:"id"`     // enrol.SecretID: public, for listings
	Digest  string    `json:"sha256"` // enrol.SecretDigest
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// UsedAt and UsedBy (the edge's certificate fingerprint) are set when
	// the secret is redeemed; it is never accepted again.
	UsedAt *time.Time `json:"used_at,omitempty"`
	UsedBy string     `json:"used_by,omitempty"`
}

// EdgeRecord is one enrolled edge certificate.
type EdgeRecord struct {
	Name        string     `json:"name"`
	Fingerprint string     `json:"fingerprint"` // certs.FullFingerprint
	Serial      string     `json:"serial"`
	NotAfter    time.Time  `json:"not_after"`
	EnrolledAt  time.Time  `json:"enrolled_at"`
	Remote      string     `json:"remote"`   // address it enrolled from
	TokenID     string     `json:"token_id"` // which secret it used
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	// RenewedFrom and RenewedTo link a certificate to the one it replaced
	// and the one that replaced it (renewal through the tunnel).
	RenewedFrom string `json:"renewed_from,omitempty"`
	RenewedTo   string `json:"renewed_to,omitempty"`
	// Certificate is the certificate issued (PEM), so that a renewal whose
	// answer was lost can be answered again (Handler.renew).
	Certificate string `json:"certificate,omitempty"`
}

// State is the store's content: the audit trail of every secret issued
// and every edge enrolled, revoked ones included.
type State struct {
	Tokens []TokenRecord `json:"tokens"`
	Edges  []EdgeRecord  `json:"edges"`
}

// Store is the JSON file that holds State. The relay and the CLI
// (`strait-relay edges ...`) both change it; every change takes an
// exclusive lock and replaces the file atomically, so neither loses the
// other's write and a reader never sees half a file.
type Store struct {
	path string
}

// OpenStore returns the store at path; a missing file is an empty store.
func OpenStore(path string) *Store { return &Store{path: path} }

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// Load reads the current state.
func (s *Store) Load() (*State, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, nil
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("enrolment store %s: %w", s.path, err)
	}
	return &st, nil
}

// Modify applies change under the store's lock; an error from change
// writes nothing.
func (s *Store) Modify(change func(*State) error) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(s.path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	st, err := s.Load()
	if err != nil {
		return err
	}
	if err := change(st); err != nil {
		return err
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := certs.WriteFile(s.path, append(data, '\n'), 0o600); err != nil {
		return err
	}
	// `sudo strait-relay edges revoke` must leave a file the relay's user
	// can still read.
	return certs.ChownLike(filepath.Dir(s.path), s.path, s.path+".lock")
}

// NewSecret stores a fresh one-time secret valid for ttl and returns it;
// only its digest is kept.
func (s *Store) NewSecret(ttl time.Duration, now time.Time) (string, TokenRecord, error) {
	secret := enrol.NewSecret()
	rec := TokenRecord{ID: enrol.SecretID(secret), Digest: enrol.SecretDigest(secret), Created: now, Expires: now.Add(ttl)}
	err := s.Modify(func(st *State) error {
		st.Tokens = append(st.Tokens, rec)
		return nil
	})
	return secret, rec, err
}

// redeem checks a secret against the state and marks it used by the edge
// whose record issue returns, all under the caller's lock: two edges
// racing with one token cannot both enrol.
func redeem(st *State, secret string, now time.Time, issue func(TokenRecord) (EdgeRecord, error)) (EdgeRecord, error) {
	digest := enrol.SecretDigest(secret)
	i := slices.IndexFunc(st.Tokens, func(t TokenRecord) bool { return t.Digest == digest })
	if i < 0 {
		return EdgeRecord{}, &enrol.Error{Code: enrol.CodeUnknown,
			Message: "this relay never issued that token (mistyped, or from another relay)"}
	}
	t := &st.Tokens[i]
	if t.UsedAt != nil {
		return EdgeRecord{}, &enrol.Error{Code: enrol.CodeUsed, Message: fmt.Sprintf(
			"token %s was used at %s by edge %s; a token enrols one edge: make another with `strait-relay edges token`",
			t.ID, t.UsedAt.UTC().Format(time.RFC3339), short(t.UsedBy))}
	}
	if !now.Before(t.Expires) {
		return EdgeRecord{}, &enrol.Error{Code: enrol.CodeExpired, Message: fmt.Sprintf(
			"token %s expired at %s; make another with `strait-relay edges token`", t.ID, t.Expires.UTC().Format(time.RFC3339))}
	}
	edge, err := issue(*t)
	if err != nil {
		return EdgeRecord{}, err
	}
	t.UsedAt, t.UsedBy = &now, edge.Fingerprint
	st.Edges = append(st.Edges, edge)
	return edge, nil
}

// Revoke marks the edges that match who (a name, or a fingerprint or its
// prefix of at least 8 hex characters) as revoked. A running relay refuses
// them from its next handshake on (see Revocations). Revoking nothing is
// an error, so a typo does not look like success.
func (s *Store) Revoke(who string, now time.Time) ([]EdgeRecord, error) {
	var out []EdgeRecord
	err := s.Modify(func(st *State) error {
		for i := range st.Edges {
			e := &st.Edges[i]
			if e.RevokedAt == nil && e.matches(who) {
				e.RevokedAt = &now
				out = append(out, *e)
			}
		}
		if len(out) == 0 {
			return fmt.Errorf("no enrolled edge named %q or with that fingerprint is active", who)
		}
		return nil
	})
	return out, err
}

func (e EdgeRecord) matches(who string) bool {
	if e.Name == who {
		return true
	}
	fp := strings.ToLower(strings.ReplaceAll(who, ":", ""))
	return len(fp) >= 8 && strings.HasPrefix(e.Fingerprint, fp)
}

// revoked lists the fingerprints of revoked edges.
func (st *State) revoked() []string {
	var out []string
	for _, e := range st.Edges {
		if e.RevokedAt != nil {
			out = append(out, e.Fingerprint)
		}
	}
	return out
}

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}
