package edge

import (
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/pool"
)

// SetGuard swaps in a new border guard (config reload); requests already
// inspected keep the policy they had.
func (e *Edge) SetGuard(g *guard.Set) { e.guard.Store(g) }

// HasDomestic reports whether the edge has a domestic relay group.
func (e *Edge) HasDomestic() bool { return e.home != nil }

// newHomePool starts the pool of the domestic relay group, with the same
// settings as the main one; nil without domestic relays.
func newHomePool(pc pool.Config, relays []tunnel.Dialer) (*pool.Pool, error) {
	if len(relays) == 0 {
		return nil, nil
	}
	pc.Dialers = relays
	pc.Logger = pc.Logger.Named("domestic")
	return pool.New(pc)
}

// guardRecord is what the border guard found in a request and its answer,
// as counts: never a value.
type guardRecord struct {
	counts []guard.Count // the outcome's: valid until release
	home   bool
	answer *guard.Answer
	writer *guard.Writer
	// outcome is the guard's decision, whose memory (the body sent, the
	// vault, the counts) goes back to the guard's pool in release.
	outcome *guard.Outcome
	// forwarding: the forwarder has not returned. When it aborts a broken
	// answer (panic(http.ErrAbortHandler)) the held rest is not sent: the
	// client's connection is cut, as without the guard. Refusals and
	// cached answers are written in full.
	forwarding bool
}

// guardDecision is how a request that passed the guard goes on.
type guardDecision struct {
	home    bool
	policy  *guard.Policy
	outcome *guard.Outcome
}

// check runs the client's border guard over the request's text. It
// refuses blocked requests (naming the categories, never the text),
// requests it cannot read, and requests to keep at home when there is no
// domestic relay group; otherwise c.body becomes the guarded body.
func (e *Edge) check(c *call) (guardDecision, *rejection) {
	p := e.guard.Load().For(c.client.Name)
	if p == nil {
		return guardDecision{}, nil
	}
	o, err := p.Inspect(c.route.Family, c.route.Path, c.body)
	if err != nil {
		return guardDecision{}, &rejection{reason: "guard_uninspectable", err: &apierr.Error{Kind: apierr.InvalidRequest, Code: "guard_uninspectable",
			Message: "Strait's border guard cannot read the text of this request (a JSON body of a chat, responses, messages or generateContent call is required), so it may not leave the country"}}
	}
	c.guard.outcome, c.guard.counts, c.guard.home = o, o.Counts, o.Home
	if len(o.Blocked) > 0 {
		c.withholdBody()
		return guardDecision{}, &rejection{reason: "guard_block", err: &apierr.Error{Kind: apierr.InvalidRequest, Code: "content_blocked",
			Message: "Strait's border guard refused this request: it contains " + strings.Join(o.Blocked, ", ") + " (policy: block)"}}
	}
	if o.Home && e.homeFwd == nil {
		return guardDecision{}, &rejection{reason: "guard_no_domestic", err: &apierr.Error{Kind: apierr.PermissionDenied, Code: "no_domestic_relay",
			Message: "Strait's border guard keeps this request in the country (" + strings.Join(homeCategories(o.Counts), ", ") +
				": keep_home), but this edge has no domestic relay group; the operator must add a relay with domestic: true"}}
	}
	c.body = o.Body
	return guardDecision{home: o.Home, policy: p, outcome: o}, nil
}

// withholdBody keeps a blocked request's body out of the audit log, which
// records bodies when the operator asks: the guard refused to let that
// text go anywhere, and the record says why (reason guard_block, the
// categories' counts), never what. Its length is kept for bytes_in.
func (c *call) withholdBody() { c.bodyLen, c.body = len(c.body), nil }

func homeCategories(counts []guard.Count) []string {
	var out []string
	for _, n := range counts {
		if n.Action == guard.KeepHome {
			out = append(out, n.Category)
		}
	}
	return out
}

// answer puts the answer restorer between the tap and the client when the
// request had values masked or the policy scans answers.
func (g guardDecision) answer(c *call) {
	a := g.policy.Answer(g.outcome)
	if a == nil {
		return
	}
	w := guard.NewWriter(c.tap.ResponseWriter, a)
	fam := c.route.Family
	cut := &apierr.Error{Kind: apierr.InvalidRequest, Code: "content_blocked",
		Message: "Strait's border guard cut this answer: it contains words the policy does not let through"}
	w.CutEvent = func() []byte { return apierr.StreamEvent(fam, cut) }
	w.CutWhole = func() (int, []byte) { return cut.Kind.Status(), apierr.Body(fam, cut) }
	w.MaxWhole = int(c.e.cfg.MaxBodyBytes)
	w.TooLarge = func() (int, []byte) {
		tooLarge := &apierr.Error{Kind: apierr.BadGateway, Code: "answer_too_large", Message: fmt.Sprintf(
			"Strait's border guard holds a JSON answer whole to restore it, and this one was larger than %d bytes (the edge's max_body_bytes); it was not sent", w.MaxWhole)}
		apierr.SetHeader(w.Header(), tooLarge) // the edge's own error, not the provider's
		return tooLarge.Kind.Status(), apierr.Body(fam, tooLarge)
	}
	c.tap.ResponseWriter = w
	c.guard.answer, c.guard.writer = a, w
}

// close sends what the restorer still holds.
func (r *guardRecord) close() {
	if r.writer != nil && !r.forwarding {
		_ = r.writer.Close()
	}
}

// release gives the outcome's memory back to the guard once the request is
// over: the body sent (Forward has returned: nothing reads it), the answer
// restored and flushed, the metrics, log line and audit record written.
// Not after a forward that broke off (http.ErrAbortHandler), whose sender
// may still be reading the body: that outcome is left to the garbage
// collector.
func (r *guardRecord) release() {
	if r.outcome != nil && !r.forwarding {
		r.outcome.Release()
	}
	r.outcome, r.counts, r.answer, r.writer = nil, nil, nil, nil
}

// outputCounts are the word finds in the answer, per category.
func (r *guardRecord) outputCounts() map[string]int {
	if r.answer == nil || len(r.answer.OutputCounts) == 0 {
		return nil
	}
	return r.answer.OutputCounts
}

// field is the guard's counts for the request log line.
func (r *guardRecord) field() zap.Field {
	var b strings.Builder
	for i, n := range r.counts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(n.Category + ":" + string(n.Action) + ":" + strconv.Itoa(n.N))
	}
	return zap.String("guard", b.String())
}
