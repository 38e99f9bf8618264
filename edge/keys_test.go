package edge

import (
	"context"
	"errors"
	"path/filepath"
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

// TestRemovedKeysLeaveTheLedger: a key removed by a reload takes its quota
// totals with it (they used to stay forever); one that comes back gets its
// usage from the store again, so removing and re-adding does not reset it.
func TestRemovedKeysLeaveTheLedger(t *testing.T) {
	db, err := usagedb.Open(filepath.Join(t.TempDir(), usagedb.FileName), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e, err := New(Config{Keys: keySet(t, "a", "b"), Relays: []tunnel.Dialer{noRelay{}}, Usage: db})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	spend := func(client string, tokens int64) {
		res, ex := e.ledger.Reserve(client, auth.Limits{}, quota.Totals{Tokens: tokens})
		if ex != nil {
			t.Fatal(ex)
		}
		res.Settle(quota.Totals{Tokens: tokens})
		db.Add(usagedb.Record{Time: time.Now(), Client: client, Model: "m", Usage: usage.Usage{Output: tokens}})
	}
	spend("a", 10)
	spend("b", 20)
	day := quota.Day(time.Now())
	if e.ledger.Len() != 4 { // a and b, day and month
		t.Fatalf("%d ledger entries, want 4", e.ledger.Len())
	}
	e.SetKeys(keySet(t, "a"))
	if n, b := e.ledger.Len(), e.ledger.Used("b", day).Tokens; n != 2 || b != 0 {
		t.Fatalf("after removing b: %d entries, b used %d; want 2 entries, b forgotten", n, b)
	}
	e.SetKeys(keySet(t, "a", "b"))
	if b, a := e.ledger.Used("b", day).Tokens, e.ledger.Used("a", day).Tokens; b != 20 || a != 10 {
		t.Fatalf("after re-adding b: a used %d, b used %d; want 10 and 20", a, b)
	}
}
