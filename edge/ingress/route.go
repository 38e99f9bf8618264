// Package ingress turns an incoming client request into what crosses the
// tunnel: the API family, an optional provider prefix, the client's key
// (taken out of the request), and headers safe to forward.
package ingress

import (
	"net/http"
	"path"
	"regexp"
	"strings"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

// Route is where a request goes.
type Route struct {
	Family   llmapi.Family
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
	first, rest := llmapi.SplitPath(urlPath)
	if fam, ok := llmapi.Detect(first, rest, h); ok {
		return Route{Family: fam, Path: urlPath}, true
	}
	// /{provider}/v1/...: a named provider, e.g. an OpenAI-compatible service.
	if providerName.MatchString(first) && rest != "" {
		next, nextRest := llmapi.SplitPath(rest)
		if fam, ok := llmapi.Detect(next, nextRest, h); ok {
			return Route{Family: fam, Provider: first, Path: rest}, true
		}
	}
	return Route{}, false
}

func clean(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	c := path.Clean(p)
	return c == p || c == strings.TrimSuffix(p, "/")
}

// TakeClientKey returns the client's key from wherever its SDK put it
// (Authorization: Bearer, x-api-key, x-goog-api-key, api-key or ?key=) and
// removes every one of those places from h and the query, so no client key
// ever enters the tunnel.
func TakeClientKey(h http.Header, rawQuery string) (key, newQuery string) {
	for _, name := range llmapi.CredentialHeaders {
		if v := llmapi.ClientKey(h, name); key == "" && v != "" {
			key = v
		}
		h.Del(name)
	}
	q, qkey := llmapi.TakeQueryKey(rawQuery)
	if key == "" {
		key = qkey
	}
	return key, q
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
