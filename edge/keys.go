package edge

import (
	"go.uber.org/zap"

	"github.com/strait/strait/edge/auth"
)

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
