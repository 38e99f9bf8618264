package llmapi

import (
	"net/http"
	"net/url"
	"strings"
)

// CredentialHeaders are every header the families' SDKs carry a key in:
// Authorization: Bearer (OpenAI), X-Api-Key (Anthropic), X-Goog-Api-Key
// (Gemini) and Api-Key (Azure OpenAI). Gemini's ?key= is the one query
// location; TakeQueryKey removes it.
var CredentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// AccountHeaders point a request at an account, organization or project:
// OpenAI's organization and project, Google's quota project. Sent with
// another account's key they make the provider answer 401/403 or reach
// another project's resources; they also decide whose answer it is.
var AccountHeaders = []string{"Openai-Organization", "Openai-Project", "X-Goog-User-Project"}

// VersionHeaders choose the API version and beta features a request is
// answered under (Anthropic's change the answer's shape and content).
var VersionHeaders = []string{"Anthropic-Version", "Anthropic-Beta", "Openai-Beta"}

// SetKey puts key where family f's API expects it (an unknown family gets
// OpenAI's Bearer token).
func SetKey(h http.Header, f Family, key string) {
	name := specs[f].keyHeader
	if name == "" || name == "Authorization" {
		h.Set("Authorization", "Bearer "+key)
		return
	}
	h.Set(name, key)
}

// ClientKey returns the key an SDK sent in header name (one of
// CredentialHeaders): the Bearer token of Authorization, the value of the
// others; "" when there is none.
func ClientKey(h http.Header, name string) string {
	v := strings.TrimSpace(h.Get(name))
	if name != "Authorization" {
		return v
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// TakeQueryKey removes every key= parameter from a raw query and returns the
// other parameters, each unchanged and in order (e.g. alt=sse must reach the
// provider as sent), joined with '&' (';' separators and empty parameters are
// dropped), and the first non-empty key value. It works on raw parts, so neither a percent-encoded name
// (%6Bey=) nor a malformed query can carry a key past it, and it splits on
// ';' as well as '&' because some servers still treat ';' as a separator.
func TakeQueryKey(raw string) (rest, key string) {
	if raw == "" {
		return "", ""
	}
	kept := make([]string, 0, 4)
	for _, part := range strings.FieldsFunc(raw, func(r rune) bool { return r == '&' || r == ';' }) {
		name, value, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if !strings.EqualFold(strings.TrimSpace(name), "key") {
			kept = append(kept, part)
			continue
		}
		if key == "" {
			if v, err := url.QueryUnescape(value); err == nil {
				value = v
			}
			key = value
		}
	}
	return strings.Join(kept, "&"), key
}
