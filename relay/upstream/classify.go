package upstream

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

// Verdict is what the relay does with a provider's answer before anything
// has gone to the client.
type Verdict int

// Verdicts.
const (
	// Deliver: pass the answer to the client (success, or an error no other
	// attempt would fix, such as 400 or 404, or a 401/403 the client's own
	// request caused).
	Deliver Verdict = iota
	// RotateKey: 429; the key cools and another key is tried at once.
	RotateKey
	// DisableKey: the provider says the key itself is bad (invalid,
	// revoked, suspended, its account out of credit); another key is tried.
	DisableKey
	// Backoff: the provider failed (500, 502, 503, 504, Anthropic's 529);
	// the request is tried again after an exponential backoff with jitter.
	Backoff
)

// Classify judges a provider's answer and maps it to the key outcome it
// implies. body is the error body (nil for a success); family is the
// provider's API family ("openai", "anthropic", "gemini").
//
// A key changes state only on evidence about the key itself. A 401 or 403
// is not such evidence: the client chooses much of what the provider
// checks (headers naming an organization or project, files, tuned models,
// betas), so any tenant could otherwise have every shared key disabled
// with one request. Only an error that names the key as invalid, revoked
// or suspended disables it; any other 401/403 goes to the client as is
// and says nothing about the key.
func Classify(family string, status int, body []byte) (Verdict, Outcome) {
	if keyRejected(family, status, body) {
		return DisableKey, Rejected
	}
	switch status {
	case http.StatusTooManyRequests:
		return RotateKey, RateLimited
	case http.StatusPaymentRequired:
		// OpenAI-compatible providers (DeepSeek) say 402 when the key's
		// account has no balance left: every request with the key fails.
		return DisableKey, Rejected
	case http.StatusUnauthorized, http.StatusForbidden:
		return Deliver, Inconclusive
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable,
		http.StatusGatewayTimeout, 529:
		return Backoff, Inconclusive
	}
	return Deliver, Worked
}

// geminiKeyReasons are google.rpc.ErrorInfo reasons that are about the API
// key itself (Gemini answers an invalid key with 400 API_KEY_INVALID).
var geminiKeyReasons = map[string]bool{
	"API_KEY_INVALID": true, "API_KEY_EXPIRED": true, "CONSUMER_SUSPENDED": true, "API_KEY_SERVICE_BLOCKED": true,
}

// keyRejected reports an error answer that names the key as unusable, in
// the provider family's own words.
func keyRejected(family string, status int, body []byte) bool {
	if status < 400 || status >= 500 || len(body) == 0 {
		return false
	}
	var e llmapi.ProviderError
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	switch family {
	case string(Anthropic):
		return status == http.StatusUnauthorized && e.Error.Type == "authentication_error"
	case string(Gemini):
		for _, r := range e.Error.Reasons() {
			if geminiKeyReasons[r] {
				return true
			}
		}
		return strings.HasPrefix(e.Error.Message, "API key not valid") || strings.HasPrefix(e.Error.Message, "API key expired")
	}
	var code string
	_ = json.Unmarshal(e.Error.Code, &code)
	switch {
	case status == http.StatusTooManyRequests:
		// Out of credit: waiting will not help, every request with the key
		// fails until someone pays.
		return code == "insufficient_quota" || e.Error.Type == "insufficient_quota"
	case status != http.StatusUnauthorized:
		return false
	}
	// OpenAI's own codes; OpenAI-compatible providers (DeepSeek, vLLM)
	// say authentication_error in the type instead.
	return code == "invalid_api_key" || code == "account_deactivated" ||
		e.Error.Type == "authentication_error" || strings.HasPrefix(e.Error.Message, "Incorrect API key provided")
}

// RetryAfter reads retry-after-ms (OpenAI, milliseconds) or Retry-After
// (seconds or an HTTP date); zero when absent or unreadable. A wait past
// time.Duration's range is the longest Duration; KeySlot.Report caps the
// cooldown at KeyPolicy.MaxCooldown.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil && ms > 0 {
		return saturated(ms, time.Millisecond)
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return saturated(s, time.Second)
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// saturated is n units as a Duration, or the longest Duration when that is
// out of range: converting a float past int64 wraps to a negative value
// (on amd64), which Report would read as no Retry-After at all.
func saturated(n float64, unit time.Duration) time.Duration {
	if d := n * float64(unit); d < math.MaxInt64 {
		return time.Duration(d)
	}
	return math.MaxInt64
}
