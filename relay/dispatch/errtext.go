package dispatch

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"regexp"
)

// clientText describes an upstream failure for the client: what went
// wrong, never where. Transport errors name the provider's URL, host and
// address ("Post \"https://10.0.0.5:8443/v1/...\": dial tcp 10.0.0.5:8443:
// connect: connection refused"); a self-hosted provider's address is the
// operator's business, not a tenant's. The full error stays in the relay's
// log.
func clientText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drops the method and URL
	}
	var (
		dns  *net.DNSError
		op   *net.OpError
		cert *tls.CertificateVerificationError
		host x509.HostnameError
		ne   net.Error
	)
	switch {
	case errors.Is(err, errFirstByte):
		return errFirstByte.Error()
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.As(err, &dns):
		return "cannot resolve the provider's host name"
	case errors.As(err, &cert), errors.As(err, &host):
		return "the provider's TLS certificate was rejected"
	case errors.As(err, &op):
		if op.Err != nil {
			return op.Op + ": " + scrubAddresses(op.Err.Error())
		}
		return op.Op + " failed"
	}
	return scrubAddresses(err.Error())
}

// addressPattern matches URLs, host:port pairs and IP addresses in text
// that clientText could not take apart.
var addressPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"']+|\[[0-9a-fA-F:.]+\](:\d+)?|\b\d{1,3}(\.\d{1,3}){3}(:\d+)?\b|\b[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}:\d+\b`)

func scrubAddresses(s string) string { return addressPattern.ReplaceAllString(s, "[provider]") }
