package edge

import (
	"go.uber.org/zap"

	"github.com/strait/strait/edge/auth"
)

// applyKeys makes labels and ledger follow the key set installed last.
// Reloads overlap (the keys-file watcher and SIGHUP), and the follow-up of
// an older set must never run after a newer one's: it would label by the
// old set and forget the quota totals of keys only the newer set has. So
// one SetKeys at a time runs it, always for the set installed at that
// moment, and runs it again until no SetKeys came in meanwhile; a SetKeys
// that finds it running leaves its set to it.
func (e *Edge) applyKeys() {
	if e.keysPending.Add(1) > 1 {
		return // the runner loads this call's set before it stops
	}
	for {
		seen := e.keysPending.Load()
		if k := e.keys.Load(); k != e.keysApplied {
			e.keysChanged(e.keysApplied, k)
			e.keysApplied = k
		}
		if e.keysPending.CompareAndSwap(seen, 0) {
			return
		}
	}
}

// keysChanged follows a new key set: metric labels for the models it names,
// and the quota ledger. Totals of removed keys are dropped (they would
// otherwise live forever); a key that comes back (re-added under its name)
// gets this month's usage from the store again, so removing and re-adding
// a key does not reset its quota.
func (e *Edge) keysChanged(old, keys *auth.Keys) {
	e.labels.configure(keys, e.policy.Prices)
	if e.shared != nil { // the shared store keeps every key's totals itself
		return
	}
	before, now := names(old), names(keys)
	added := map[string]bool{}
	for name := range now {
		if !before[name] {
			added[name] = true
		}
	}
	// An added key starts from the store alone: whatever requests of its
	// earlier self settled after it was removed is in the store too.
	e.ledger.Forget(func(client string) bool { return now[client] && !added[client] })
	if len(added) > 0 {
		if err := e.loadUsage(added); err != nil {
			e.log.Error("loading the usage of added client keys", zap.Error(err))
		}
	}
}

// names is the set of client names in k (nil: none).
func names(k *auth.Keys) map[string]bool {
	out := map[string]bool{}
	if k != nil {
		for _, c := range k.Clients() {
			out[c.Name] = true
		}
	}
	return out
}
