package enrol

import "fmt"

const (
	// ALPN is the TLS protocol an edge asks for to enrol. A relay answers
	// it without asking for a client certificate (the edge has none yet)
	// and serves only the enrolment endpoints on that connection, never a
	// tunnel session.
	ALPN = "strait-enrol/1"
	// PathCA serves the tunnel CA certificate (PEM), so an edge can check
	// it against the token's fingerprint before sending anything secret.
	PathCA = "/strait/ca"
	// PathEnrol takes a Request (POST, JSON) and answers a Response.
	PathEnrol = "/strait/enrol"
	// PathRenew takes a Request without a secret (POST, JSON) on a
	// connection authenticated with the edge's current certificate, and
	// answers a Response with a new certificate for the same edge.
	PathRenew = "/strait/renew"
	// MaxRequestBytes bounds a request body: a CSR and a name.
	MaxRequestBytes = 16 << 10
)

// Request is the body of POST PathEnrol.
type Request struct {
	Secret string `json:"secret"`
	// Name is the edge's name (the certificate's common name), e.g. its
	// host name; the relay may shorten it.
	Name string `json:"name"`
	// CSR is a PEM certificate request for the edge's new key.
	CSR string `json:"csr"`
}

// Response is the answer to a successful enrolment.
type Response struct {
	// Certificate is the edge's client certificate (PEM).
	Certificate string `json:"certificate"`
	// CA is the tunnel CA (PEM), for the edge to pin the relay.
	CA string `json:"ca"`
	// Fingerprint is the certificate's SHA-256 in hex: the name the relay
	// lists it under and revokes it by.
	Fingerprint string `json:"fingerprint"`
}

// Reasons a relay refuses an enrolment, as Error.Code.
const (
	CodeUnknown = "token_unknown" // no such secret (mistyped, or another relay's)
	CodeUsed    = "token_used"    // accepted once already
	CodeExpired = "token_expired"
	CodeBadCSR  = "bad_request" // malformed body or certificate request
	CodeServer  = "server_error"
	// CodeNotEnrolled refuses a renewal from a certificate the relay's
	// store does not list (made by hand, or already renewed).
	CodeNotEnrolled = "not_enrolled"
	// CodeFingerprint is the edge's own refusal: the relay's CA is not the
	// one the token pins.
	CodeFingerprint = "wrong_fingerprint"
)

// Error is a refused enrolment: the body of a non-2xx answer, and the
// error the client returns.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("enrolment refused (%s): %s", e.Code, e.Message) }

// ErrorBody is the JSON shape of a refusal on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}
