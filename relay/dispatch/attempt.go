package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convert"
	"github.com/strait/strait/relay/upstream"
)

// RetryPolicy bounds what the relay tries before the first byte of an
// answer; once a byte has gone toward the client nothing is retried.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts per provider of a route (the
	// primary, then each fallback); zero means 3.
	MaxAttempts int
	// Budget is the total time a request may spend on failed attempts,
	// backoffs and waits for a cooling key; zero means 60s.
	Budget time.Duration
	// Backoff is the first pause after a 5xx or connection failure; it
	// doubles per attempt, with full jitter, up to MaxBackoff. Zero means
	// 200ms; MaxBackoff zero means 5s.
	Backoff, MaxBackoff time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 3
	}
	if p.Budget <= 0 {
		p.Budget = 60 * time.Second
	}
	if p.Backoff <= 0 {
		p.Backoff = 200 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	return p
}

// caller runs the attempts of one request.
type caller struct {
	d        *Dispatcher
	x        *exchange
	client   *upstream.Inbound // the request as the client sent it
	in       *upstream.Inbound // the request for the current target (client's, or converted)
	route    *upstream.Route
	conv     *conversion       // nil unless the current target speaks another family
	listing  []upstream.Target // a model listing merges these in
	deadline time.Time
	attempts int
	// last is the most recent provider error answer, delivered (with the
	// attempt count) when no attempt succeeds; lastErr is the most recent
	// failure without an answer.
	last    *errorAnswer
	lastErr error
	// noKey: some provider had no usable key within the budget; coolUntil
	// is the earliest end of a cooldown among them (zero when every key
	// was disabled). With no attempt made, the client gets 429 or 503.
	noKey     bool
	coolUntil time.Time
	// keyRejected: the provider said a key itself is invalid or revoked.
	// That answer is about Strait's key, not the client's: the client
	// gets a 503 of the relay's own instead (see fail).
	keyRejected bool
}

// errorAnswer is a provider's error response, read whole so that another
// attempt can still be made.
type errorAnswer struct {
	status int
	header http.Header
	body   []byte
	conv   *conversion // the attempt's conversion: the error is in its provider's format
}

// maxErrorBody bounds how much of an error answer is kept.
const maxErrorBody = 1 << 20

// answer is a response that will be delivered: nothing is retried once it
// exists. first holds the body bytes already read (the first byte arrived
// within the time limit).
type answer struct {
	resp   *http.Response
	first  []byte
	target upstream.Target
	slot   *upstream.KeySlot
	cancel context.CancelFunc // ends the upstream call
}

// run makes attempts until one answer can be delivered, then streams it.
func (c *caller) run(ctx context.Context) {
	c.deadline = time.Now().Add(c.d.cfg.Retry.Budget)
	for i, t := range c.route.Targets {
		if i > 0 {
			if !c.retarget(t) {
				continue
			}
			c.x.log.Info("trying fallback provider", zap.String("fallback", t.Provider.Name), zap.String("upstream_model", t.Model))
		}
		if a := c.tryTarget(ctx, t); a != nil {
			c.deliver(ctx, a)
			return
		}
		if ctx.Err() != nil {
			c.x.ended(endClientGone)
			return
		}
	}
	c.fail()
}

// retarget prepares the request for fallback t: the client's own, or
// converted when t speaks another API format. It returns false, with a log
// line, when the request cannot be converted for t (convert refuses the
// pair or the endpoint); the fallback is then skipped.
func (c *caller) retarget(t upstream.Target) bool {
	c.in, c.conv = c.client, nil
	if !needsConversion(c.client.Header, t) {
		return true
	}
	in, conv, end := crossFamily(c.client, t, c.d.cfg.Conversations)
	if end != nil {
		c.x.log.Warn("fallback skipped: the request cannot be converted for it",
			zap.String("fallback", t.Provider.Name), zap.String("reason", end.Message))
		return false
	}
	c.in, c.conv = in, conv
	return true
}

// tryTarget makes up to MaxAttempts attempts on one provider.
func (c *caller) tryTarget(ctx context.Context, t upstream.Target) *answer {
	tried := map[*upstream.KeySlot]bool{}
	for n := 0; n < c.d.cfg.Retry.MaxAttempts; n++ {
		slot := c.acquire(ctx, t.Provider, tried)
		if slot == nil {
			return nil
		}
		tried[slot] = true
		a, backoff := c.attempt(ctx, t, slot)
		if a != nil || ctx.Err() != nil {
			return a
		}
		if backoff && n+1 < c.d.cfg.Retry.MaxAttempts && !c.sleep(ctx, c.backoff(n)) {
			return nil
		}
		if !time.Now().Before(c.deadline) {
			return nil
		}
	}
	return nil
}

// acquire gets a key, waiting for the earliest recovery when every key is
// cooling, as long as that fits in the budget.
func (c *caller) acquire(ctx context.Context, p *upstream.Provider, tried map[*upstream.KeySlot]bool) *upstream.KeySlot {
	for {
		slot, wait := p.Acquire(tried)
		if slot != nil {
			return slot
		}
		if wait < 0 || time.Now().Add(wait).After(c.deadline) {
			c.lastErr = fmt.Errorf("no usable key for provider %s (all cooling down or disabled)", p.Name)
			c.x.log.Warn("no usable provider key within the retry budget", zap.String("provider", p.Name),
				zap.Duration("earliest_recovery", wait))
			c.x.m.retry(p.Name, "no_key")
			c.noKey = true
			if cw := p.EarliestCooling(); cw >= 0 {
				if at := time.Now().Add(cw); c.coolUntil.IsZero() || at.Before(c.coolUntil) {
					c.coolUntil = at
				}
			}
			return nil
		}
		c.x.log.Info("every key is cooling down; waiting for the first to recover",
			zap.String("provider", p.Name), zap.Duration("wait", wait))
		if !c.sleep(ctx, wait) {
			return nil
		}
	}
}

// attempt makes one call. It returns the answer to deliver, or nil and
// whether the next attempt should back off first.
func (c *caller) attempt(ctx context.Context, t upstream.Target, slot *upstream.KeySlot) (*answer, bool) {
	c.attempts++
	log := c.x.log.WithLazy(zap.String("provider", t.Provider.Name), zap.String("key", slot.Key.Fingerprint()),
		zap.Int("attempt", c.attempts))
	actx, cancel := context.WithCancel(ctx)
	req, err := t.NewRequest(actx, c.in, slot.Key)
	if err != nil {
		cancel()
		slot.Release()
		c.lastErr = err
		return nil, false
	}
	c.x.stats.Provider = t.Provider.Name
	called := time.Now()
	if c.attempts == 1 {
		c.x.stats.Timing.Relay = called.Sub(c.x.start)
	}
	resp, first, err := c.firstByte(cancel, req, t.Provider.Timeouts())
	c.x.stats.Timing.Upstream = time.Since(called)
	if err == nil && resp.StatusCode >= 400 {
		// An error is judged by its body: only the provider's own words
		// tell a rejected key from a request the client got wrong.
		body := newIdleBody(resp.Body, t.Provider.Timeouts().Idle, cancel)
		first = append(first, readSome(body, maxErrorBody-len(first))...)
		body.stop()
		if body.fired.Load() { // a provider silent in the middle of its error: a failed attempt
			resp.Body.Close()
			err = fmt.Errorf("%w (%s), reading an error answer", errIdle, body.limit)
		}
	}
	if err != nil {
		cancel()
		slot.Release()
		if ctx.Err() != nil {
			return nil, false
		}
		cause := "connection"
		if errors.Is(err, errFirstByte) || isTimeout(err) {
			cause = "timeout"
		}
		c.lastErr = err
		log.Info("upstream attempt failed", zap.String("cause", cause), zap.Error(err))
		c.x.m.attempt(t.Provider.Name, cause)
		return nil, true
	}
	verdict, outcome := upstream.Classify(t.Provider.Family(), resp.StatusCode, first)
	if verdict == upstream.Deliver {
		if tr, changed := slot.Report(outcome, 0); changed {
			logTransition(log, tr)
		}
		result := "delivered"
		if outcome == upstream.Inconclusive {
			result = "client_refused" // a 401/403 the request caused; the key stays as it was
		}
		c.x.m.attempt(t.Provider.Name, result)
		return &answer{resp: resp, first: first, target: t, slot: slot, cancel: cancel}, false
	}
	body := first
	resp.Body.Close()
	cancel()
	retryAfter := upstream.RetryAfter(resp.Header, time.Now())
	c.last = &errorAnswer{status: resp.StatusCode, header: resp.Header, body: body, conv: c.conv}
	if verdict == upstream.DisableKey {
		// Passed on, it would tell the client that its own key is bad (the
		// SDKs raise AuthenticationError and stop) and show a masked
		// fragment of the provider key ("sk-up***789").
		c.last, c.keyRejected = nil, true
	}
	c.lastErr = nil
	tr, changed := slot.Report(outcome, retryAfter)
	if changed {
		logTransition(log, tr)
	}
	cause := causeOf(verdict, resp.StatusCode)
	log.Info("upstream attempt failed", zap.String("cause", cause), zap.Int("status", resp.StatusCode),
		zap.Duration("retry_after", retryAfter))
	c.x.m.attempt(t.Provider.Name, cause)
	return nil, verdict == upstream.Backoff
}

func causeOf(v upstream.Verdict, status int) string {
	switch v {
	case upstream.RotateKey:
		return "rate_limited"
	case upstream.DisableKey:
		return "key_rejected"
	case upstream.Backoff:
		return "status_" + strconv.Itoa(status)
	}
	return "other"
}

func logTransition(log *zap.Logger, tr upstream.Transition) {
	switch tr.To {
	case upstream.Disabled:
		log.Error("PROVIDER KEY DISABLED: the provider rejected it; it will be probed again later",
			zap.Stringer("from", tr.From), zap.Duration("probe_in", tr.For))
	case upstream.Cooling:
		log.Info("provider key cooling down", zap.Duration("for", tr.For))
	default:
		log.Warn("provider key state changed", zap.Stringer("from", tr.From), zap.Stringer("to", tr.To))
	}
}

// backoff is the pause before attempt n+2: exponential with full jitter.
func (c *caller) backoff(n int) time.Duration {
	p := c.d.cfg.Retry
	d := min(p.Backoff<<min(n, 16), p.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, cut to the budget; false if ctx ended or the budget is
// spent.
func (c *caller) sleep(ctx context.Context, d time.Duration) bool {
	if left := time.Until(c.deadline); d > left {
		d = left
	}
	if d <= 0 {
		return ctx.Err() == nil && time.Now().Before(c.deadline)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// fail tells the client that every attempt failed: the last provider
// error itself, marked with the attempt count; 429 or 503 when no key was
// usable and nothing was tried, or when the last answer rejected a key;
// or a relay error.
func (c *caller) fail() {
	if c.last != nil {
		status, h, body := c.last.status, c.last.header.Clone(), c.last.body
		if c.last.conv != nil {
			status, h, body = c.last.conv.plan.ErrorResponse(status, h, body)
		}
		upstream.CleanResponseHeader(h)
		h.Del("Content-Length")
		if c.attempts > 1 {
			body = annotate(body, fmt.Sprintf(" (Strait relay: gave up after %d attempts)", c.attempts))
		}
		c.respondError(status, h, body)
		return
	}
	if (c.attempts == 0 && c.noKey) || c.keyRejected {
		c.noKeyAnswer()
		return
	}
	msg := fmt.Sprintf("provider failed after %d attempts", c.attempts)
	if c.attempts == 0 {
		msg = "no attempt was possible within the retry budget"
	}
	if c.lastErr != nil {
		msg += ": " + clientText(c.lastErr)
	}
	code := proto.CodeUpstreamUnreachable
	reason := endUpstreamError
	if c.lastErr != nil && (errors.Is(c.lastErr, errFirstByte) || isTimeout(c.lastErr)) {
		code, reason = proto.CodeUpstreamTimeout, endTimeout
	}
	c.x.ended(reason)
	c.x.finish(proto.End{Code: code, Message: msg})
}

// respondError delivers an error answer as a normal HTTP response.
func (c *caller) respondError(status int, h http.Header, body []byte) {
	h.Set("X-Strait-Attempts", strconv.Itoa(c.attempts))
	c.x.stats.Status = status
	c.x.stats.Timing.Set(h)
	if err := c.x.w.WriteResponse(&proto.ResponseHeader{Status: status, Header: h}); err != nil {
		return
	}
	if _, err := c.x.w.Write(body); err != nil {
		return
	}
	c.x.stats.BytesDown = int64(len(body))
	c.x.ended(endUpstreamError)
	c.x.finish(proto.End{})
}

// noKeyAnswer tells the client that no provider key was usable within the
// budget, or that the provider rejected the key tried, in the client's own
// API format: 429 with Retry-After (the earliest end of a cooldown, in
// whole seconds rounded up) when a key is cooling, else 503 (keys
// rejected or disabled, waiting for their probe).
func (c *caller) noKeyAnswer() {
	h := c.client.Header
	d, ok := llmapi.ClientDialect(llmapi.Family(h.Family), h.Method, h.Path)
	if !ok {
		d = llmapi.Family(h.Family).Dialect()
	}
	out := http.Header{"Content-Type": {"application/json"}}
	e := &convert.Error{Kind: convert.ErrOverloaded, Message: "Strait relay: every provider key for this model is disabled; try again later"}
	if c.keyRejected {
		e.Message = "Strait relay: the provider rejected Strait's key for this model (the operator must replace it); try again later"
	}
	status := http.StatusServiceUnavailable
	if !c.coolUntil.IsZero() {
		secs := max(1, int64(math.Ceil(time.Until(c.coolUntil).Seconds())))
		e = &convert.Error{Kind: convert.ErrRateLimit, Message: fmt.Sprintf(
			"Strait relay: every provider key for this model is rate-limited; retry after %d s", secs)}
		status = http.StatusTooManyRequests
		out.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	c.respondError(status, out, e.Body(d))
}

// readSome reads up to n bytes of r.
func readSome(r io.Reader, n int) []byte {
	if n <= 0 {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(r, int64(n)))
	return b
}
