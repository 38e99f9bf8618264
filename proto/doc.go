// Package proto defines what travels on a tunnel stream between edge and relay.
//
// One HTTP exchange uses one stream. Both directions carry a sequence of
// frames:
//
//	frame   = type:uint8 length:uvarint payload:[length]byte
//
// Edge → relay:
//
//	Request  (exactly one, first)   the HTTP request line and headers
//	Data*                           the request body, in order
//	End                             end of body (Code OK) or abort
//
// Relay → edge:
//
//	Dispatched?                     the request has been sent upstream;
//	                                from here on it must never be replayed
//	Response?                       status and headers of the upstream answer
//	Data*                           the response body, one frame per upstream read
//	End                             Code OK for a complete body, otherwise why it broke
//
// If the relay fails before it has a response (no route, upstream unreachable)
// it sends End without Response, and the edge renders the error in the API
// family's own format. If the edge stops reading (its client went away) it
// closes the stream; the relay sees io.EOF on its read side and cancels the
// upstream call.
//
// Strings are uvarint length + bytes. Headers are a uvarint count of
// (name, uvarint value-count, values...) entries. The Request payload starts
// with a version byte so the encoding can evolve; a relay answers an unknown
// version with End{Code: CodeBadRequest}.
//
// Decoders are bounded: a frame longer than the caller's limit is an error
// before any of it is buffered.
package proto
