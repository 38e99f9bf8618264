package proto

import (
	"net/url"
	"strings"
)

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
