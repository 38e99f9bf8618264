// Package store is the seam between the edge and where its per-key state
// lives: rate-limit buckets, quota reservations and settlements, and usage
// counters. One edge keeps them in memory and in its bbolt file (Local and
// usagedb, the default); several edges share them through Redis
// (redisstore), so a key's limits, quotas and usage hold across all of them.
package store

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/ratelimit"
	"github.com/strait/strait/edge/usagedb"
)

// Admitter decides whether a client's request may go out: its rate-limit
// buckets and its quotas, in one step, so that a store shared by several
// edges can decide in one round trip.
type Admitter interface {
	// Admit takes one request and tokens (the estimate) from client's
	// buckets under lim's RPM and TPM and reserves want against lim's
	// quotas; on any refusal it takes and reserves nothing. The error is
	// set only when the store cannot decide (a shared store that is down
	// under a fail_closed policy): the request must then be refused as
	// unavailable, not as over a limit.
	Admit(ctx context.Context, client string, lim auth.Limits, tokens int64, want quota.Totals) (Admission, error)
	// Used is client's settled and reserved totals for period (a
	// quota.Day or quota.Month), for the quota metrics.
	Used(client, period string) quota.Totals
}

// Admission is Admit's answer. The request is admitted when Hold is set.
type Admission struct {
	// Rate is the buckets' decision; when !Rate.OK the request is over a
	// rate limit.
	Rate ratelimit.Decision
	// Exceeded is the quota the request would cross, or nil.
	Exceeded *quota.Exceeded
	// Hold is the admitted request's reservation, nil when refused.
	Hold Hold
}

// Hold is an admitted request's claim on its client's quotas and token
// bucket until the request ends.
type Hold interface {
	// Settle releases the reservation, charges actual to the quotas and
	// corrects the token bucket by actual.Tokens minus the estimate. It
	// never fails the request: a shared store that cannot be reached keeps
	// the settlement and applies it when it returns. Later calls do
	// nothing.
	Settle(actual quota.Totals)
}

// Usage keeps usage per client, model and UTC day.
type Usage interface {
	// Add records one finished request; it is stored asynchronously.
	Add(usagedb.Record)
	// Query returns the matching rows, sorted by day, client and model,
	// including rows not stored yet.
	Query(usagedb.Filter) ([]usagedb.Row, error)
	// Err is nil while the store writes.
	Err() error
}

// ErrUnavailable is Admit's error when a shared store cannot be reached
// and the policy is to refuse requests meanwhile (fail_closed).
var ErrUnavailable = errors.New("the shared policy store (Redis) is unavailable")

// Local is the embedded Admitter: this process's own buckets and ledger.
type Local struct {
	Limits *ratelimit.Limiter
	Ledger *quota.Ledger
}

// Admit takes from the buckets, then reserves; tokens taken for a request
// that a quota refuses are given back.
func (l Local) Admit(_ context.Context, client string, lim auth.Limits, tokens int64, want quota.Totals) (Admission, error) {
	d := l.Limits.Take(client, lim.RPM, lim.TPM, tokens)
	if !d.OK {
		return Admission{Rate: d}, nil
	}
	res, ex := l.Ledger.Reserve(client, lim, want)
	if ex != nil {
		l.Limits.Adjust(client, -tokens) // not sent: give the tokens back
		return Admission{Rate: d, Exceeded: ex}, nil
	}
	return Admission{Rate: d, Hold: &localHold{res: res, limits: l.Limits, client: client, estimate: tokens}}, nil
}

// Used reads the ledger.
func (l Local) Used(client, period string) quota.Totals { return l.Ledger.Used(client, period) }

type localHold struct {
	res      *quota.Reservation
	limits   *ratelimit.Limiter
	client   string
	estimate int64
	done     bool
}

func (h *localHold) Settle(actual quota.Totals) {
	if h.done {
		return
	}
	h.done = true
	h.res.Settle(actual)
	h.limits.Adjust(h.client, actual.Tokens-h.estimate)
}

// Shared is a store several edges share (redisstore.Store): it takes over
// admission and usage from the embedded ones.
type Shared interface {
	Admitter
	Usage
	// Ready fails while the store cannot be reached.
	Ready(context.Context) error
	// Collectors are the store's metrics.
	Collectors() []prometheus.Collector
}
