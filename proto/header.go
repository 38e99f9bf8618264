package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
)

// Version is the stream protocol version a Request carries. Version 2 adds
// Model; a relay reads versions 1 and 2, so relays are upgraded before
// edges (an edge of version 2 is refused by a relay of version 1).
const Version = 2

// versionNoModel is the version before RequestHeader.Model.
const versionNoModel = 1

// HedgeHeader, in a RequestHeader's Header, marks a hedged request: the
// edge sends it on two streams, and the relay gives the copy that comes
// second the same answer as the first (relay's answer mirrors) instead of
// refusing it. Its value is "1". The relay never forwards it; one that
// predates it refuses the second copy, as before, and drops the header
// with the other X-* headers.
const HedgeHeader = "X-Strait-Hedge"

// HedgeMaxHeader is the largest encoded request header (the FrameRequest
// payload) of a request the edge may hedge: the relay reads a new stream's
// request ID ahead of the rest only from a header this small, and without
// the ID it can neither refuse a second copy nor mirror the first one's
// answer to it (it would call the provider twice).
const HedgeMaxHeader = 15 << 10

// ErrMalformed reports a payload that does not decode.
var ErrMalformed = errors.New("proto: malformed payload")

// RequestHeader is the first frame of a stream: one HTTP request as the edge
// received it, with client credentials already removed.
type RequestHeader struct {
	ID       string // request id, echoed in logs on both sides
	Family   string // API family chosen by the edge: "openai", "anthropic", "gemini"
	Provider string // optional provider name from a /{provider}/... path prefix
	Method   string
	Path     string // path as sent upstream, without any provider prefix
	RawQuery string
	Header   http.Header
	// BodyLen is the request body length, or -1 when unknown.
	BodyLen int64
	// Model is the model the edge read (proto/llmapi) and judged its
	// policy on; empty when the request names none. The relay routes on it
	// and refuses a body that names another.
	Model string
	// NoModel marks a header of version 1, from an edge that sends no
	// Model: the relay reads the model from the body alone. Append encodes
	// such a header as version 1 (without Model), so it round-trips.
	NoModel bool
}

// Append appends the encoded header (the payload of a FrameRequest).
func (h *RequestHeader) Append(b []byte) []byte {
	v := byte(Version)
	if h.NoModel {
		v = versionNoModel
	}
	b = append(b, v)
	for _, s := range [...]string{h.ID, h.Family, h.Provider, h.Method, h.Path, h.RawQuery} {
		b = appendString(b, s)
	}
	b = appendHeader(b, h.Header)
	b = binary.AppendVarint(b, h.BodyLen)
	if h.NoModel {
		return b
	}
	return appendString(b, h.Model)
}

// ParseRequestHeader decodes a FrameRequest payload.
func ParseRequestHeader(p []byte) (*RequestHeader, error) {
	d := decoder{p: p}
	v := d.byte()
	if d.err == nil && v != Version && v != versionNoModel {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, v)
	}
	h := &RequestHeader{NoModel: v == versionNoModel}
	for _, s := range [...]*string{&h.ID, &h.Family, &h.Provider, &h.Method, &h.Path, &h.RawQuery} {
		*s = d.string()
	}
	h.Header = d.header()
	h.BodyLen = d.varint()
	if !h.NoModel {
		h.Model = d.string()
	}
	return h, d.finish()
}

// ResponseHeader is the status line and headers of the upstream answer.
type ResponseHeader struct {
	Status int
	Header http.Header
}

// Append appends the encoded header (the payload of a FrameResponse).
func (h *ResponseHeader) Append(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(h.Status))
	return appendHeader(b, h.Header)
}

// ParseResponseHeader decodes a FrameResponse payload.
func ParseResponseHeader(p []byte) (*ResponseHeader, error) {
	d := decoder{p: p}
	status := d.uvarint() // range-checked before int conversion, which could truncate
	h := &ResponseHeader{Header: d.header()}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("%w: status %d", ErrMalformed, status)
	}
	h.Status = int(status)
	return h, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendHeader(b []byte, h http.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for name, values := range h {
		b = appendString(b, name)
		b = binary.AppendUvarint(b, uint64(len(values)))
		for _, v := range values {
			b = appendString(b, v)
		}
	}
	return b
}

// decoder reads fields from a payload; the first error sticks, so callers
// check once at the end.
type decoder struct {
	p   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: bad %s", ErrMalformed, what)
	}
	d.p = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.p) == 0 {
		d.fail("byte")
		return 0
	}
	c := d.p[0]
	d.p = d.p[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if d.err != nil || n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if d.err != nil || n <= 0 {
		d.fail("varint")
		return 0
	}
	d.p = d.p[n:]
	return v
}

// count reads a count of items and checks that that many items of at least
// minEach bytes fit in what is left, so a forged count cannot make the
// decoder allocate more than a small multiple of the payload's size.
func (d *decoder) count(minEach int) int {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)/minEach) {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	b := d.p[:n]
	d.p = d.p[n:]
	if s, ok := common[string(b)]; ok { // the lookup does not allocate
		return s
	}
	return string(b)
}

// common holds strings most requests and responses carry (header names and
// values, methods, families), decoded without an allocation each.
var common = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"GET", "POST", "openai", "anthropic", "gemini",
		"Accept", "Accept-Encoding", "Anthropic-Beta", "Anthropic-Version", "Cache-Control", "Content-Encoding",
		"Content-Length", "Content-Type", "Date", "Openai-Organization", "Openai-Processing-Ms", "Openai-Project",
		"Openai-Version", "Request-Id", "Server", "Server-Timing", "User-Agent", "Vary", "X-Accel-Buffering",
		"X-Request-Id", "X-Stainless-Arch", "X-Stainless-Async", "X-Stainless-Lang", "X-Stainless-Os",
		"X-Stainless-Package-Version", "X-Stainless-Retry-Count", "X-Stainless-Runtime",
		"X-Stainless-Runtime-Version", "X-Strait-Timing", "application/json", "text/event-stream",
		"text/event-stream; charset=utf-8", "application/json; charset=utf-8", "no-cache", "gzip", "*/*",
	} {
		m[s] = s
	}
	return m
}()

// maxHeaderHint bounds the map size hint taken from a decoded header count.
const maxHeaderHint = 64

func (d *decoder) header() http.Header {
	n := d.count(2) // each entry is at least a name length and a value count
	if d.err != nil {
		return nil
	}
	// Only pre-size for ordinary headers: a map slot costs ~48 bytes per
	// 2-byte entry, and entries may repeat a name or fail to decode, so a
	// plausible but forged count must not size the map (a 1 MiB payload
	// could otherwise allocate, and keep, a 48 MiB map for one header).
	h := make(http.Header, min(n, maxHeaderHint))
	// Most names have one value: those share one backing array, sized like
	// the map's hint, instead of a slice each. Each gets capacity one, so an
	// Add to one never overwrites the next.
	var single []string
	for range n {
		name := d.string()
		var values []string
		switch c := d.count(1); {
		case c == 1 && len(single) < cap(single):
			single = append(single, d.string())
			values = single[len(single)-1 : len(single) : len(single)]
		case c == 1 && single == nil:
			single = make([]string, 1, min(n, maxHeaderHint))
			single[0] = d.string()
			values = single[0:1:1]
		default:
			values = make([]string, c)
			for i := range values {
				values[i] = d.string()
			}
		}
		if d.err != nil {
			return nil
		}
		h[name] = values
	}
	return h
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.p) != 0 {
		d.fail("trailing bytes")
	}
	return d.err
}

// hopHeaders are connection-level headers (RFC 9110 §7.6.1) plus those that
// describe one hop's framing; neither end forwards them across the tunnel.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Host"}

// RemoveHopHeaders deletes hop-by-hop headers from h, including any that the
// Connection header names.
func RemoveHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}
