// Package ingress turns an incoming client request into what crosses the
// tunnel: the API family, an optional provider prefix, the client's key
// (taken out of the request), and headers safe to forward.
package ingress

import (
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/proto"
)

// Route is where a request goes.
type Route struct {
	Family   apierr.Family
	Provider string // from a /{provider}/v1/... prefix; empty for the family default
	Path     string // path without the provider prefix
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// Classify finds the API family of a request from its path (and, where
// OpenAI and Anthropic share a path such as /v1/models, from the
// anthropic-version header that every Anthropic SDK sends). ok is false for
// paths that belong to no API Strait serves, or that are not clean.
func Classify(urlPath string, h http.Header) (r Route, ok bool) {
	if !clean(urlPath) {
		return Route{}, false
	}
	first, rest := split(urlPath)
	if fam, ok := familyOf(first, rest, h); ok {
		return Route{Family: fam, Path: urlPath}, true
	}
	// /{provider}/v1/...: a named provider, e.g. an OpenAI-compatible service.
	if providerName.MatchString(first) && rest != "" {
		next, nextRest := split(rest)
		if fam, ok := familyOf(next, nextRest, h); ok {
			return Route{Family: fam, Provider: first, Path: rest}, true
		}
	}
	return Route{}, false
}

func familyOf(first, rest string, h http.Header) (apierr.Family, bool) {
	switch first {
	case "v1beta", "v1alpha", "upload":
		return apierr.Gemini, true
	case "v1":
		second, _ := split(rest)
		switch {
		case second == "messages" || second == "complete":
			return apierr.Anthropic, true
		case second == "models" && isGeminiCall("/v1"+rest):
			return apierr.Gemini, true // /v1/models/{model}:generateContent, not OpenAI's /v1/models/ft:…
		case h.Get("Anthropic-Version") != "":
			return apierr.Anthropic, true
		}
		return apierr.OpenAI, true
	}
	return "", false
}

func isGeminiCall(p string) bool {
	_, method, ok := proto.GeminiModelPath(p)
	return ok && method != ""
}

// split returns the first segment of p and the rest (with its leading /).
func split(p string) (string, string) {
	p = strings.TrimPrefix(p, "/")
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

func clean(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	c := path.Clean(p)
	return c == p || c == strings.TrimSuffix(p, "/")
}

// FamilyGuess picks the error format for a request that Classify rejected,
// so even a 404 comes in a shape the caller's SDK parses.
func FamilyGuess(h http.Header, rawQuery string) apierr.Family {
	switch {
	case h.Get("X-Goog-Api-Key") != "" || strings.Contains(rawQuery, "key="):
		return apierr.Gemini
	case h.Get("Anthropic-Version") != "" || h.Get("X-Api-Key") != "":
		return apierr.Anthropic
	}
	return apierr.OpenAI
}

// credentialHeaders carry client keys in the various SDKs' styles.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"}

// TakeClientKey returns the client's key from wherever its SDK put it
// (Authorization: Bearer, x-api-key, x-goog-api-key, api-key or ?key=) and
// removes every one of those places from h and the query, so no client key
// ever enters the tunnel.
func TakeClientKey(h http.Header, rawQuery string) (key, newQuery string) {
	for _, name := range credentialHeaders {
		v := strings.TrimSpace(h.Get(name))
		if name == "Authorization" {
			if s, ok := cutBearer(v); ok {
				v = s
			} else {
				v = ""
			}
		}
		if key == "" && v != "" {
			key = v
		}
		h.Del(name)
	}
	q, qkey := proto.TakeQueryKey(rawQuery)
	if key == "" {
		key = qkey
	}
	return key, q
}

func cutBearer(v string) (string, bool) {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:]), true
	}
	return "", false
}

// ForwardHeader returns the headers to send through the tunnel: the
// client's minus connection-level ones, cookies, Accept-Encoding and the
// body length (the tunnel frames the body itself). Credentials must
// already have been taken by TakeClientKey.
func ForwardHeader(h http.Header) http.Header {
	out := h.Clone()
	proto.RemoveHopHeaders(out)
	out.Del("Content-Length")
	out.Del("Cookie")
	// The relay chooses the encoding of its provider connection so that
	// the edge always reads plain answers; what the client gets is decided
	// here, not by the provider.
	out.Del("Accept-Encoding")
	return out
}
