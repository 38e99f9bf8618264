package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// call is the state of one request while it is being answered.
type call struct {
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	d     dialect
	rec   *record
	body  []byte
	seq   int64      // server-wide request number, for ids
	start time.Time  // arrival, for "created" timestamps
	files *fileStore // the account's uploaded files

	tokens   int
	interval time.Duration
	shape    shape // see faults.go

	// A test's clock, when set: now stands in for time.Now and pause for
	// sleep.
	now   func() time.Time
	pause func(time.Duration) bool
}

// clock is the call's time.Now.
func (c *call) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// settings applies the configuration and the X-Fake-Tokens /
// X-Fake-Interval-Ms overrides of this request.
func (c *call) settings(cfg Config) {
	c.tokens, c.interval = cfg.Tokens, cfg.Interval
	if n, ok := headerInt(c.r, "X-Fake-Tokens"); ok {
		c.tokens = n
	}
	if ms, ok := headerInt(c.r, "X-Fake-Interval-Ms"); ok {
		c.interval = time.Duration(ms) * time.Millisecond
	}
	c.readShape()
}

func headerInt(r *http.Request, name string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(name)))
	return n, err == nil && n >= 0
}

// requestFault returns the fault this particular request asks for, through
// X-Fake-Fault (+ X-Fake-Retry-After) or a fail-NNN / hang model name.
func requestFault(r *http.Request, model string) (Fault, bool) {
	spec := strings.TrimSpace(r.Header.Get("X-Fake-Fault"))
	if spec == "" && (model == "hang" || strings.HasPrefix(model, "fail-")) {
		spec = strings.TrimPrefix(model, "fail-")
	}
	f, ok := parseFault(spec)
	if secs, set := headerInt(r, "X-Fake-Retry-After"); ok && set {
		f.RetryAfter = time.Duration(secs) * time.Second
	}
	return f, ok
}

func parseFault(spec string) (Fault, bool) {
	if strings.EqualFold(spec, "hang") {
		return Fault{Hang: true}, true
	}
	status, err := strconv.Atoi(spec)
	if err != nil || status < 400 || status > 599 {
		return Fault{}, false
	}
	return Fault{Status: status}, true
}

// retryAfter is the delay a fault advertises; see Fault.RetryAfter.
func (f Fault) retryAfter() time.Duration {
	switch {
	case f.RetryAfter < 0:
		return 0
	case f.RetryAfter > 0:
		return f.RetryAfter
	case f.Status == http.StatusTooManyRequests:
		return time.Second
	}
	return 0
}

// applyFault answers (or, for a hang, does not answer) with the fault.
func (c *call) applyFault(f Fault) {
	if f.Hang {
		<-c.ctx.Done()
		return
	}
	e := &apiError{status: f.Status, message: classOf(f.Status).message + " (injected by fakeprovider)", retryAfter: f.retryAfter()}
	if f.Status == http.StatusUnauthorized {
		// An injected 401 is a revoked key, in each family's words for it
		// (OpenAI's invalid_api_key code and Anthropic's
		// authentication_error come with the status).
		e.reason = "API_KEY_INVALID"
	}
	c.fail(e)
}

// decode unmarshals the JSON body into v, answering 400 if it is malformed.
func (c *call) decode(v any) bool {
	if err := json.Unmarshal(c.body, v); err != nil {
		c.fail(&apiError{status: http.StatusBadRequest, message: "We could not parse the JSON body of your request: " + err.Error()})
		return false
	}
	return true
}

// writeJSON sends a complete JSON response.
func (c *call) writeJSON(status int, v any) {
	b := mustJSON(v)
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	if _, err := c.w.Write(b); err == nil {
		c.rec.complete()
	}
}

// reply sends a non-streaming completion after the time its generation
// would have taken; a client that leaves meanwhile is recorded as gone.
func (c *call) reply(cp completion, v any) {
	if len(cp.pieces) > 1 && !c.sleep(time.Duration(len(cp.pieces)-1)*c.interval) {
		return
	}
	c.writeJSON(http.StatusOK, v)
}

// sleep waits d unless the client goes away first; it reports whether the
// client is still there.
func (c *call) sleep(d time.Duration) bool {
	if c.pause != nil {
		return c.pause(d)
	}
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// id builds a deterministic, unique object id such as "chatcmpl-fake7".
func (c *call) id(prefix string) string { return fmt.Sprintf("%sfake%d", prefix, c.seq) }

// promptTokens is the deterministic input-token count the fake reports: one
// token per four bytes of request body, like the usual rule of thumb.
func (c *call) promptTokens() int { return max(1, len(c.body)/4) }

// completion is the generated answer to one request.
type completion struct {
	pieces    []string
	truncated bool // cut short by the request's max-tokens parameter
}

// generate produces the configured number of pieces, capped by the
// request's max-tokens parameter when it is positive.
func (c *call) generate(maxTokens int) completion {
	n := c.tokens
	truncated := maxTokens > 0 && maxTokens < n
	if truncated {
		n = maxTokens
	}
	return c.reshape(completion{pieces: pieces(n), truncated: truncated})
}

func (cp completion) text() string { return strings.Join(cp.pieces, "") }

func pieces(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(" tok%d", i)
	}
	if n > 0 {
		out[0] = out[0][1:]
	}
	return out
}

// Text returns the text of a completion of n tokens: "tok0 tok1 … tok<n-1>".
// Streamed, it arrives as the pieces "tok0", " tok1", …, one per event.
func Text(n int) string { return completion{pieces: pieces(n)}.text() }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Every payload is built by this package from plain values.
		panic(fmt.Sprintf("fakeprovider: marshal %T: %v", v, err))
	}
	return b
}

// object is a JSON object that keeps its keys in the order written, so the
// payloads read like the real APIs' ("type" first) and stay byte-stable.
type object []field

type field struct {
	key   string
	value any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		buf = append(append(append(buf, k...), ':'), v...)
	}
	return append(buf, '}'), nil
}
