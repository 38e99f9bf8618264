// Package keystore keeps the client keys that operators create with the
// edge's CLI: a JSON file in the edge's data directory holding, per key, its
// name, policy and SHA-256 digest, never the key itself. The CLI rewrites
// the file atomically; a running edge notices within a second (Watch) and
// swaps its key set, so creating or disabling a key needs no restart.
package keystore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/edge/auth"
)

// FileName is the keys file's name inside the data directory.
const FileName = "keys.json"

// Record is one stored key.
type Record struct {
	Name     string      `json:"name"`
	Digest   string      `json:"sha256"` // hex SHA-256 of the key
	Prefix   string      `json:"prefix"` // the first characters, to recognise a key
	Created  time.Time   `json:"created"`
	Expires  time.Time   `json:"expires,omitzero"`
	Disabled bool        `json:"disabled,omitempty"`
	Models   []string    `json:"models,omitempty"`
	Limits   auth.Limits `json:"limits,omitzero"`
	// Endpoints are endpoint classes allowed beyond inference.
	Endpoints []string `json:"endpoints,omitempty"`
}

// Client is the record's policy as auth sees it.
func (r Record) Client() auth.Client {
	return auth.Client{Name: r.Name, Models: r.Models, Expires: r.Expires, Disabled: r.Disabled, Limits: r.Limits,
		Endpoints: r.Endpoints}
}

// File is the content of the keys file.
type File struct {
	Keys []Record `json:"keys"`
}

// Entries converts the records for auth.NewKeySet.
func (f *File) Entries() ([]auth.Entry, error) {
	out := make([]auth.Entry, 0, len(f.Keys))
	for _, r := range f.Keys {
		d, err := auth.ParseDigest(r.Digest)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", r.Name, err)
		}
		out = append(out, auth.Entry{Digest: d, Client: r.Client()})
	}
	return out, nil
}

// Load reads the keys file; a missing file is an empty one.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// KeyPrefix starts every generated key, so leaked keys are recognisable
// (secret scanners, log review).
const KeyPrefix = "sk-strait-"

// Registry is where the CLI's keys live: the keys file of one edge
// (FileRegistry), or a store several edges share (redisstore.Keys).
type Registry interface {
	// Load returns every key.
	Load() (*File, error)
	// Create adds a key for r (Name, Expires, Models, Limits) and returns
	// the key: the only time it exists outside the client's hands.
	Create(r Record) (string, error)
	// Update changes the key named name.
	Update(name string, change func(*Record)) error
	// Remove deletes the key named name.
	Remove(name string) error
	// Watch calls load whenever the keys may have changed, until ctx ends.
	Watch(ctx context.Context, load func())
}

// FileRegistry is the keys file at Path, checked for changes every Poll.
type FileRegistry struct {
	Path string
	Poll time.Duration
}

// Load reads the file.
func (r FileRegistry) Load() (*File, error) { return Load(r.Path) }

// Create adds a key to the file.
func (r FileRegistry) Create(rec Record) (string, error) { return Create(r.Path, rec) }

// Update changes a key in the file.
func (r FileRegistry) Update(name string, change func(*Record)) error {
	return Update(r.Path, name, change)
}

// Remove deletes a key from the file.
func (r FileRegistry) Remove(name string) error { return Remove(r.Path, name) }

// Watch polls the file.
func (r FileRegistry) Watch(ctx context.Context, load func()) { Watch(ctx, r.Path, r.Poll, load) }

// NewRecord completes r (Name, Expires, Models, Limits, Endpoints) with a
// new key's digest, prefix and creation time, and returns the key.
func NewRecord(r Record) (string, Record, error) {
	if r.Name == "" {
		return "", r, errors.New("a key needs a name")
	}
	key, err := newKey()
	if err != nil {
		return "", r, err
	}
	r.Digest = auth.DigestOf(key).String()
	r.Prefix = key[:len(KeyPrefix)+4]
	r.Created = time.Now().UTC().Truncate(time.Second)
	return key, r, nil
}

// Create adds a key for r (Name, Expires, Models, Limits) and returns the
// key: the only time it exists outside the client's hands.
func Create(path string, r Record) (string, error) {
	key, r, err := NewRecord(r)
	if err != nil {
		return "", err
	}
	err = modify(path, func(f *File) error {
		if f.find(r.Name) >= 0 {
			return fmt.Errorf("a key named %q exists already", r.Name)
		}
		f.Keys = append(f.Keys, r)
		return nil
	})
	if err != nil {
		return "", err
	}
	return key, nil
}

// Update changes the key named name.
func Update(path, name string, change func(*Record)) error {
	return modify(path, func(f *File) error {
		i := f.find(name)
		if i < 0 {
			return fmt.Errorf("no key named %q", name)
		}
		change(&f.Keys[i])
		return nil
	})
}

// Remove deletes the key named name.
func Remove(path, name string) error {
	return modify(path, func(f *File) error {
		i := f.find(name)
		if i < 0 {
			return fmt.Errorf("no key named %q", name)
		}
		f.Keys = slices.Delete(f.Keys, i, i+1)
		return nil
	})
}

func (f *File) find(name string) int {
	return slices.IndexFunc(f.Keys, func(r Record) bool { return r.Name == name })
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newKey returns KeyPrefix and 40 random base-62 characters (238 bits).
func newKey() (string, error) {
	b := []byte(KeyPrefix)
	max := big.NewInt(int64(len(alphabet)))
	for range 40 {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		b = append(b, alphabet[n.Int64()])
	}
	return string(b), nil
}

// modify applies change under an exclusive lock (two CLI calls at once must
// not lose a key) and replaces the file atomically (a running edge never
// reads half a file).
func modify(path string, change func(*File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	f, err := Load(path)
	if err != nil {
		return err
	}
	if err := change(f); err != nil {
		return err
	}
	if _, err := f.Entries(); err != nil {
		return err
	}
	return writeAtomic(path, f)
}

func writeAtomic(path string, f *File) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is an entry of the directory, durable only once the
	// directory is: without this a crash can bring back the file before it
	// (a created key's record lost, a removed key back).
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("keys file %s written, but not made durable: %w", path, err)
	}
	// `sudo strait-edge keys create` must leave a file the edge's user can
	// still read.
	return certs.ChownLike(filepath.Dir(path), path, path+".lock")
}

// syncDir flushes the directory dir (its entries) to disk; a variable so
// that a test can see it called after the rename.
var syncDir = func(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Watch calls load every time the file at path changes (checked every
// interval), until ctx ends. It returns when ctx ends.
func Watch(ctx context.Context, path string, interval time.Duration, load func()) {
	last := stamp(path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := stamp(path); s != last {
			last = s
			load()
		}
	}
}

// fileStamp changes whenever the file is replaced or rewritten.
type fileStamp struct {
	mod   time.Time
	size  int64
	inode uint64
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	s := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.inode = st.Ino
	}
	return s
}
