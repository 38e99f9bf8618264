package edge

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/tunnel"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// lumberjack starts one mill goroutine per audit log and never
		// stops it (natefinch/lumberjack#56).
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// noRelay is a relay that is never reachable: these tests need no tunnel.
type noRelay struct{}

func (noRelay) Dial(context.Context) (tunnel.Session, error) { return nil, errors.New("no relay") }
func (noRelay) Addr() string                                 { return "nowhere" }

func keySet(t *testing.T, names ...string) *auth.Keys {
	t.Helper()
	var entries []auth.Entry
	for _, n := range names {
		entries = append(entries, auth.Entry{Digest: auth.DigestOf("key-of-" + n), Client: auth.Client{Name: n}})
	}
	k, err := auth.NewKeySet(entries)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ledgerRig is an edge with a usage store whose clients a and b spent 10
// and 20 tokens today; now is its clock (nil: time.Now).
type ledgerRig struct {
	e   *Edge
	day string
}

func newLedgerRig(t *testing.T, now func() time.Time) ledgerRig {
	t.Helper()
	db, err := usagedb.Open(filepath.Join(t.TempDir(), usagedb.FileName), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e, err := New(Config{Keys: keySet(t, "a", "b"), Relays: []tunnel.Dialer{noRelay{}}, Usage: db, Policy: Policy{Now: now}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	for _, s := range []struct {
		client string
		tokens int64
	}{{"a", 10}, {"b", 20}} {
		res, ex := e.ledger.Reserve(s.client, auth.Limits{}, quota.Totals{Tokens: s.tokens})
		if ex != nil {
			t.Fatal(ex)
		}
		res.Settle(quota.Totals{Tokens: s.tokens})
		db.Add(usagedb.Record{Time: time.Now(), Client: s.client, Model: "m", Usage: usage.Usage{Output: s.tokens}})
	}
	return ledgerRig{e: e, day: quota.Day(time.Now())}
}

// used is what client has used today as the ledger counts it.
func (r ledgerRig) used(client string) int64 { return r.e.ledger.Used(client, r.day).Tokens }

// TestRemovedKeysLeaveTheLedger: a key removed by a reload takes its quota
// totals with it (they used to stay forever); one that comes back gets its
// usage from the store again, so removing and re-adding does not reset it.
func TestRemovedKeysLeaveTheLedger(t *testing.T) {
	r := newLedgerRig(t, nil)
	if r.e.ledger.Len() != 4 { // a and b, day and month
		t.Fatalf("%d ledger entries, want 4", r.e.ledger.Len())
	}
	r.e.SetKeys(keySet(t, "a"))
	if n, b := r.e.ledger.Len(), r.used("b"); n != 2 || b != 0 {
		t.Fatalf("after removing b: %d entries, b used %d; want 2 entries, b forgotten", n, b)
	}
	r.e.SetKeys(keySet(t, "a", "b"))
	if b, a := r.used("b"), r.used("a"); b != 20 || a != 10 {
		t.Fatalf("after re-adding b: a used %d, b used %d; want 10 and 20", a, b)
	}
}

// stallingClock is time.Now, except that one call, once armed, waits until
// the test lets it go: a way to stop a key reload in the middle of its
// ledger work.
type stallingClock struct{ next atomic.Pointer[stall] }

type stall struct{ reached, release chan struct{} }

func (c *stallingClock) now() time.Time {
	if s := c.next.Swap(nil); s != nil {
		close(s.reached)
		<-s.release
	}
	return time.Now()
}

// arm makes the next call stall.
func (c *stallingClock) arm() *stall {
	s := &stall{reached: make(chan struct{}), release: make(chan struct{})}
	c.next.Store(s)
	return s
}

// TestOverlappingReloadsEndOnTheInstalledKeys: the keys-file watcher and
// SIGHUP can reload at once. A reload that installed its keys first but
// finished its ledger work last used to forget the totals of a key only
// the newer set has, resetting that key's quota while it is in use.
func TestOverlappingReloadsEndOnTheInstalledKeys(t *testing.T) {
	clock := &stallingClock{}
	r := newLedgerRig(t, clock.now)
	s := clock.arm()
	older := make(chan struct{})
	go func() {
		defer close(older)
		r.e.SetKeys(keySet(t, "a")) // b removed; stalls in the ledger's clock
	}()
	<-s.reached
	r.e.SetKeys(keySet(t, "a", "b")) // the newer reload: b is back
	close(s.release)
	<-older
	if got := r.e.keys.Load().Len(); got != 2 {
		t.Fatalf("%d keys installed, want the newer set's 2", got)
	}
	if b, a := r.used("b"), r.used("a"); b != 20 || a != 10 {
		t.Fatalf("after both reloads: a used %d, b used %d; want 10 and 20 (b's quota must not reset)", a, b)
	}
}
