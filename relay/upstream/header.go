package upstream

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

// bytesReader reads b once, and lets go of it at its end: the transport
// keeps a request, Body included, until its answer is over, and an answer
// may stream for minutes after a prompt of megabytes was sent.
func bytesReader(b []byte) io.ReadCloser { return &onceReader{b: b} }

// smallBody is the largest request body the relay sends from a copy of its
// own (see requestBody).
const smallBody = 4 << 10

// requestBody is an upstream request's body and its GetBody. net/http's
// HTTP/1.1 transport flushes a request's header by itself, one write and one
// segment before the body, unless the body is one of the in-memory readers
// it knows: two writes per request on the provider connection, where one
// would do. So a small body goes as a *bytes.Reader over a copy of it
// (the copy, not the request frame it may be a slice of, is what the
// transport then holds until the answer ends: at most smallBody per
// stream), and a larger one as a bytesReader, which lets go of it, at the
// price of the extra write.
func requestBody(b []byte) (io.ReadCloser, func() (io.ReadCloser, error)) {
	switch {
	case len(b) == 0:
		// Not even an empty reader: the transport would probe it for a
		// body, or send a GET chunked.
		return http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
	case len(b) > smallBody:
		return bytesReader(b), func() (io.ReadCloser, error) { return bytesReader(b), nil }
	}
	c := bytes.Clone(b)
	return io.NopCloser(bytes.NewReader(c)), func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c)), nil }
}

type onceReader struct{ b []byte }

func (r *onceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		r.b = nil
		return 0, io.EOF
	}
	n := copy(p, r.b)
	if r.b = r.b[n:]; len(r.b) == 0 {
		r.b = nil // an empty tail still points into the array
	}
	return n, nil
}

// Close does nothing: the transport may close a body while its writer still
// reads it, and the slice is let go at its end anyway.
func (r *onceReader) Close() error { return nil }

// credentialHeaders may carry a client's or another provider's key; they are
// never forwarded, whatever the edge sent and whatever a provider allows.
var credentialHeaders = append([]string{"Proxy-Authorization", "Cookie"}, llmapi.CredentialHeaders...)

// relayOwned are headers about the relay's own connection to the provider:
// the relay chooses the encoding it can decode (so the edge can meter the
// answer) and asks for whole bodies; the edge's hedge mark is for the relay.
var relayOwned = []string{"Accept-Encoding", "Range", "If-Range", proto.HedgeHeader}

// accountResponseHeaders are what a provider's answer tells about the
// operator's account rather than about the request. Cookies are set for the
// relay's own connection (Cloudflare's __cf_bm and _cfuvid in front of
// OpenAI and Anthropic) and would be shared by every tenant; the ids name
// the organization, project or workspace the shared key belongs to. No SDK
// reads them. What SDKs do read passes: request ids (x-request-id,
// request-id), rate limits (x-ratelimit-*, anthropic-ratelimit-*: clients
// back off on them, and the shared account's limits are the ones that bind
// their requests), retry-after, openai-processing-ms and openai-version.
// Gemini sends no such id.
var accountResponseHeaders = []string{"Set-Cookie", "Set-Cookie2", "Openai-Organization", "Openai-Project",
	"Anthropic-Organization-Id", "Anthropic-Workspace-Id"}

// originResponseHeaders describe the provider's host, and a client would
// apply them to the edge's: Alt-Svc would send it to an HTTP/3 endpoint the
// edge may not have, Strict-Transport-Security would pin the edge's name
// for the provider's lifetime and subdomains.
var originResponseHeaders = []string{"Alt-Svc", "Strict-Transport-Security"}

// CleanResponseHeader deletes from a provider's response header, in place,
// what must not reach the edge: hop-by-hop headers, those that describe the
// operator's account (accountResponseHeaders) and the provider's host
// (originResponseHeaders).
func CleanResponseHeader(h http.Header) {
	proto.RemoveHopHeaders(h)
	for _, list := range [][]string{accountResponseHeaders, originResponseHeaders} {
		for _, k := range list {
			h.Del(k)
		}
	}
}

// HeaderFilter decides which of a client's headers go to a provider. The
// zero value is the default policy.
type HeaderFilter struct {
	allow []string // canonical names, or prefixes ending in '*'
}

// NewHeaderFilter compiles a provider's allow_headers: names
// ("OpenAI-Organization") or prefixes ending in '*' ("X-Fake-*"), case
// insensitive. Credential headers, the relay's own connection headers and
// names with '_' (see Copy) cannot be allowed.
func NewHeaderFilter(allow []string) (HeaderFilter, error) {
	var f HeaderFilter
	for _, a := range allow {
		name, prefix := strings.CutSuffix(a, "*")
		if name == "" || strings.ContainsAny(name, "* :\t") {
			return f, fmt.Errorf("allow_headers: %q is not a header name or a prefix ending in *", a)
		}
		if strings.Contains(name, "_") {
			return f, fmt.Errorf("allow_headers: %q: the relay never forwards a header name with '_'", a)
		}
		c := http.CanonicalHeaderKey(name)
		for _, never := range append(append([]string{}, credentialHeaders...), relayOwned...) {
			// A prefix may cover one of them (X-*): Copy drops those last,
			// whatever is allowed.
			if c == never && !prefix {
				return f, fmt.Errorf("allow_headers: the relay never forwards %s", never)
			}
		}
		if prefix {
			c += "*"
		}
		f.allow = append(f.allow, c)
	}
	return f, nil
}

func (f HeaderFilter) allows(canonical string) bool {
	for _, a := range f.allow {
		if p, ok := strings.CutSuffix(a, "*"); (ok && strings.HasPrefix(canonical, p)) || a == canonical {
			return true
		}
	}
	return false
}

// Copy adds to dst the client headers in src that may go to the provider.
// Always dropped: credentials, hop-by-hop headers, Content-Length, the
// relay-owned encoding headers and any name with '_'. Dropped unless
// allowed: account headers and every other X-* header (unknown extensions
// whose effect on a shared key nobody reviewed; SDK telemetry such as
// X-Stainless-* loses nothing).
//
// A name with '_' is dropped, as nginx does by default, rather than matched
// with '_' read as '-': an upstream that folds the two (CGI, WSGI, many
// proxies) would read X_api_key as X-Api-Key, Openai_organization as
// OpenAI-Organization and Transfer_encoding as Transfer-Encoding. Every
// list here, and the hop-by-hop one, matches canonical names, so folding
// would have to reach each of them (and any added later), while one check
// up front covers them all; no provider or SDK uses such a name.
func (f HeaderFilter) Copy(dst, src http.Header) {
	for k, vv := range src {
		// Canonical names only: Del below, and the transport's own Host and
		// Content-Length, match canonical keys, so "x-api-key" or "host" from
		// the edge would otherwise go out verbatim next to ours.
		ck := http.CanonicalHeaderKey(k)
		if strings.Contains(ck, "_") || strings.HasPrefix(ck, "X-") && !f.allows(ck) {
			continue
		}
		dst[ck] = append(dst[ck], vv...)
	}
	// A client's account headers (llmapi.AccountHeaders) would point the
	// shared key at another account: any tenant could make the provider
	// answer 401/403, or reach another project's resources. Dropped unless
	// the provider's AllowHeaders names them.
	for _, k := range llmapi.AccountHeaders {
		if !f.allows(k) {
			dst.Del(k)
		}
	}
	for _, list := range [][]string{credentialHeaders, relayOwned} {
		for _, k := range list {
			dst.Del(k)
		}
	}
	proto.RemoveHopHeaders(dst)
	dst.Del("Content-Length")
}
