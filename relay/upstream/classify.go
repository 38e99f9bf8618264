package upstream

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Verdict is what the relay does with a provider's answer before anything
// has gone to the client.
type Verdict int

// Verdicts.
const (
	// Deliver: pass the answer to the client (success, or an error no other
	// attempt would fix, such as 400 or 404).
	Deliver Verdict = iota
	// RotateKey: 429; the key cools and another key is tried at once.
	RotateKey
	// DisableKey: the key is bad (401, 402, 403, quota exhausted); another
	// key is tried.
	DisableKey
	// Backoff: the provider failed (500, 502, 503, 504, Anthropic's 529);
	// the request is tried again after an exponential backoff with jitter.
	Backoff
)

// Classify judges a status (and, for 429, the error body) and maps it to
// the key outcome it implies.
func Classify(status int, body []byte) (Verdict, Outcome) {
	switch status {
	case http.StatusTooManyRequests:
		// OpenAI says insufficient_quota when the account is out of credit:
		// waiting will not help, so it counts as a rejected key.
		if bytes.Contains(body, []byte("insufficient_quota")) {
			return DisableKey, Rejected
		}
		return RotateKey, RateLimited
	case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusForbidden:
		return DisableKey, Rejected
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 529:
		return Backoff, Inconclusive
	}
	return Deliver, Worked
}

// RetryAfter reads retry-after-ms (OpenAI, milliseconds) or Retry-After
// (seconds or an HTTP date); zero when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
