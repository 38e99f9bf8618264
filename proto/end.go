package proto

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Code says how a stream ended. Values are part of the wire format.
type Code uint16

// End codes.
const (
	CodeOK                  Code = 0 // body complete
	CodeCanceled            Code = 1 // the sender gave up (client went away)
	CodeBadRequest          Code = 2 // the relay could not understand the request
	CodeNoRoute             Code = 3 // no configured provider serves this request
	CodeTooLarge            Code = 4 // request body over the relay's limit
	CodeUpstreamUnreachable Code = 5 // no response from the provider (dial, TLS, timeout)
	CodeUpstreamBroken      Code = 6 // the provider's response broke off mid-body
	CodeUpstreamTimeout     Code = 7 // the provider did not answer in time
	CodeGoingAway           Code = 8 // the relay is shutting down and did not dispatch
	CodeInternal            Code = 9
	CodeDuplicate           Code = 10 // the relay already took a request with this ID upstream; not sent again
)

var codeNames = map[Code]string{
	CodeOK: "ok", CodeCanceled: "canceled", CodeBadRequest: "bad_request",
	CodeNoRoute: "no_route", CodeTooLarge: "too_large",
	CodeUpstreamUnreachable: "upstream_unreachable", CodeUpstreamBroken: "upstream_broken",
	CodeUpstreamTimeout: "upstream_timeout", CodeGoingAway: "going_away", CodeInternal: "internal",
	CodeDuplicate: "duplicate",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// End is the last frame in each direction.
type End struct {
	Code    Code
	Message string // human-readable detail; never contains secrets
}

// Error makes a non-OK End usable as an error.
func (e *End) Error() string {
	if e.Message == "" {
		return "stream ended: " + e.Code.String()
	}
	return "stream ended: " + e.Code.String() + ": " + e.Message
}

// Append appends the encoded End (the payload of a FrameEnd).
func (e *End) Append(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(e.Code))
	return appendString(b, e.Message)
}

// ParseEnd decodes a FrameEnd payload.
func ParseEnd(p []byte) (*End, error) {
	d := decoder{p: p}
	code := d.uvarint()
	if code > math.MaxUint16 {
		d.fail("code") // Code(code) would truncate: 65536 would read as CodeOK
	}
	e := &End{Code: Code(code)}
	e.Message = d.string()
	return e, d.finish()
}
