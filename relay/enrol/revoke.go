package enrol

import (
	"crypto/tls"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
)

// Revocations refuses edges the store marks revoked. It looks at the
// store file on every handshake (one stat) and re-reads it when it
// changed, so `strait-relay edges revoke` shuts an edge out from its next
// handshake on, with no signal and no restart.
type Revocations struct {
	store *Store
	log   *zap.Logger

	mu    sync.Mutex
	stamp fileStamp
	list  certs.Revocations
}

// NewRevocations reads the store once; a store that cannot be read is an
// error here (at startup) and a logged warning later (the last good list
// stays).
func NewRevocations(store *Store, log *zap.Logger) (*Revocations, error) {
	r := &Revocations{store: store, log: log}
	if err := r.refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// VerifyConnection refuses a revoked edge; use it as (part of)
// tls.Config.VerifyConnection.
func (r *Revocations) VerifyConnection(cs tls.ConnectionState) error {
	if err := r.refresh(); err != nil {
		r.log.Warn("enrolment store unreadable; the last revocation list stays", zap.String("path", r.store.Path()), zap.Error(err))
	}
	return r.list.VerifyConnection(cs)
}

func (r *Revocations) refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := stampOf(r.store.Path())
	if s == r.stamp && s != (fileStamp{}) {
		return nil
	}
	st, err := r.store.Load()
	if err != nil {
		return err
	}
	if err := r.list.Set(st.revoked()); err != nil {
		return err
	}
	if r.stamp != (fileStamp{}) {
		r.log.Info("enrolled edge revocations applied", zap.Int("revoked_edges", r.list.Len()))
	}
	r.stamp = s
	return nil
}

// fileStamp changes whenever the file is replaced (the store always
// replaces it by rename, so the inode changes too).
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
