package upstream

import (
	"bytes"
	"github.com/strait/strait/proto"
	"io"
	"net/http"
)

type readCloser = io.ReadCloser

func bytesReader(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

// credentialHeaders may carry a client's or another provider's key; they are
// never forwarded, whatever the edge sent.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key", "Proxy-Authorization", "Cookie"}

func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		// Canonical names only: Del below, and the transport's own Host and
		// Content-Length, match canonical keys, so "x-api-key" or "host" from
		// the edge would otherwise go out verbatim next to ours.
		ck := http.CanonicalHeaderKey(k)
		dst[ck] = append(dst[ck], vv...)
	}
	for _, k := range credentialHeaders {
		dst.Del(k)
	}
	proto.RemoveHopHeaders(dst)
	dst.Del("Content-Length")
}
