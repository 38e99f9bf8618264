// Package convstore keeps the conversations of Responses API clients whose
// requests the relay converts for a provider of another API (Anthropic,
// Gemini, Chat Completions): what OpenAI would store for previous_response_id
// and GET /v1/responses/{id}. Each record is the conversation so far (input
// and output items) and the response object the client saw, with a time to
// live. Two backends keep them: a bbolt file (Store), with a size budget
// where the oldest records go first when it is full, and Redis (Redis),
// which several relays share, so a conversation begun through one relay
// continues through another.
//
// Response ids are 96-bit random values the relay made, so an id is the
// capability to read its conversation, as it is at OpenAI within an
// organisation; the relay knows no tenants. Relays of separate deployments
// sharing one Redis keep apart by their key prefix.
package convstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRecords = []byte("records") // id → expiry (8 bytes, unix ns) + value
	bucketExpiry  = []byte("expiry")  // expiry (8 bytes) + id → nothing: eviction order
)

// ErrTooLarge reports a record larger than the whole budget.
var ErrTooLarge = errors.New("convstore: record larger than the store's budget")

// ErrNotFound reports an id that is not stored, or whose record expired.
var ErrNotFound = errors.New("convstore: no such record")

// Backend is a conversation store: Store (bbolt) or Redis. Its methods are
// safe for concurrent use.
type Backend interface {
	// Put stores value under id for the store's TTL.
	Put(id string, value []byte) error
	// Get returns the value stored under id: ErrNotFound when it is not
	// there or expired, another error when the store cannot be read.
	Get(id string) ([]byte, error)
	// Delete removes id; false when it was not there (or had expired).
	Delete(id string) (bool, error)
	// Close releases the store.
	Close() error
}

var _ Backend = (*Store)(nil)

// Store is an open store, safe for concurrent use.
type Store struct {
	db     *bolt.DB
	ttl    time.Duration
	budget int64
	now    func() time.Time

	mu   sync.Mutex // serialises writers with size
	size int64      // bytes of stored values
}

// Defaults for Open's zero arguments.
const (
	DefaultTTL      = 30 * 24 * time.Hour // as long as OpenAI keeps stored responses
	DefaultMaxBytes = 1 << 30
)

// Open opens (or creates) the store at path. ttl and maxBytes of zero take
// the defaults.
func Open(path string, ttl time.Duration, maxBytes int64) (*Store, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("convstore: %w", err)
	}
	s := &Store{db: db, ttl: ttl, budget: maxBytes, now: time.Now}
	err = db.Update(func(tx *bolt.Tx) error {
		recs, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketExpiry); err != nil {
			return err
		}
		return recs.ForEach(func(_, v []byte) error { s.size += int64(len(v)); return nil })
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("convstore: %w", err)
	}
	return s, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

func expiryKey(exp int64, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(exp))
	return append(k, id...)
}

// Put stores value under id for the store's TTL, first dropping expired
// records and then the oldest ones until it fits the budget.
func (s *Store) Put(id string, value []byte) error {
	exp := s.now().Add(s.ttl).UnixNano()
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(value)), uint64(exp))
	v = append(v, value...)
	if int64(len(v)) > s.budget {
		return ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := s.size // the size once the transaction commits
	err := s.db.Update(func(tx *bolt.Tx) error {
		recs, byExp := tx.Bucket(bucketRecords), tx.Bucket(bucketExpiry)
		if old := recs.Get([]byte(id)); old != nil {
			size -= int64(len(old))
			if err := byExp.Delete(expiryKey(int64(binary.BigEndian.Uint64(old)), id)); err != nil {
				return err
			}
		}
		now := s.now().UnixNano()
		c := byExp.Cursor()
		for k, _ := c.First(); k != nil && (int64(binary.BigEndian.Uint64(k)) <= now || size+int64(len(v)) > s.budget); k, _ = c.First() {
			victim := k[8:]
			size -= int64(len(recs.Get(victim)))
			if err := recs.Delete(victim); err != nil {
				return err
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		if err := recs.Put([]byte(id), v); err != nil {
			return err
		}
		if err := byExp.Put(expiryKey(exp, id), nil); err != nil {
			return err
		}
		size += int64(len(v))
		return nil
	})
	if err == nil { // a commit that failed changed nothing on disk
		s.size = size
	}
	return err
}

// Get returns the value stored under id, or ErrNotFound if it is not
// there or expired.
func (s *Store) Get(id string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRecords).Get([]byte(id))
		if len(v) < 8 || int64(binary.BigEndian.Uint64(v)) <= s.now().UnixNano() {
			return ErrNotFound
		}
		out = append([]byte(nil), v[8:]...)
		return nil
	})
	return out, err
}

// Delete removes id; false when it was not there (or had expired).
func (s *Store) Delete(id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	found, freed := false, int64(0)
	err := s.db.Update(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		v := recs.Get([]byte(id))
		if len(v) < 8 {
			return nil
		}
		exp := int64(binary.BigEndian.Uint64(v))
		found, freed = exp > s.now().UnixNano(), int64(len(v))
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(exp, id)); err != nil {
			return err
		}
		return recs.Delete([]byte(id))
	})
	if err != nil { // a commit that failed changed nothing on disk
		return false, err
	}
	s.size -= freed
	return found, nil
}

// Size is the bytes the stored values take (without bbolt's overhead).
func (s *Store) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}
