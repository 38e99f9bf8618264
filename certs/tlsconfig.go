package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"time"
)

const (
	// TunnelALPN is the ALPN protocol the WebSocket tunnel negotiates.
	TunnelALPN = "strait-ws/1"
	// QUICALPN is the ALPN protocol the QUIC tunnel negotiates.
	QUICALPN = "strait-quic/1"
)

// ServerConfig returns the relay's tunnel config: TLS 1.3 only, a client
// certificate signed by clientCAs is required, and the server certificate
// comes from kp on every handshake (so Reload takes effect). NextProtos is
// left nil for the caller to set: TunnelALPN (and "http/1.1", which the
// WebSocket upgrade needs) for the WS tunnel, QUICALPN for QUIC. A nil pool
// rejects every client instead of falling back to the system roots.
func ServerConfig(kp *KeyPair, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      pinned(clientCAs),
		GetCertificate: kp.GetCertificate,
	}
}

// ClientConfig returns the edge's tunnel config: TLS 1.3 only, the server
// must present a certificate for serverName signed by rootCAs (never the
// system roots; a nil pool rejects every server), and the client
// certificate comes from kp on every handshake. A nil kp sends no client
// certificate, which is only useful in tests.
func ClientConfig(kp *KeyPair, rootCAs *x509.CertPool, serverName string) *tls.Config {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    pinned(rootCAs),
		ServerName: serverName,
	}
	if kp != nil {
		cfg.GetClientCertificate = kp.GetClientCertificate
	}
	return cfg
}

// FrontConfig returns the config for the edge's public HTTPS listener. It
// allows TLS 1.2 because the SDK clients that call it vary in age; Go's
// default TLS 1.2 suites already exclude RSA key exchange, so every
// negotiated suite is forward-secret.
func FrontConfig(kp *KeyPair) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: kp.GetCertificate,
	}
}

// pinned guards against a nil pool: crypto/x509 treats a nil Roots as
// "use the system roots", which would let any public certificate in.
func pinned(p *x509.CertPool) *x509.CertPool {
	if p == nil {
		return x509.NewCertPool()
	}
	return p
}

// DescribeVerifyError turns a TLS handshake or verification error into a
// short human reason for logging refused handshakes on either side, such as
// "client presented no certificate", "certificate signed by unknown
// authority", "certificate expired", "certificate not valid for name X" or
// "remote refused our certificate: <alert>". Anything it does not recognise
// yields err.Error(); nil yields "".
func DescribeVerifyError(err error) string {
	if err == nil {
		return ""
	}
	for _, describe := range []func(error) string{describeX509, describeRemoteAlert, describeLocal} {
		if s := describe(err); s != "" {
			return s
		}
	}
	return err.Error()
}

// describeX509 handles failures to verify the peer's certificate. These
// come wrapped in tls.CertificateVerificationError, which errors.AsType sees
// through.
func describeX509(err error) string {
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return "certificate signed by unknown authority"
	}
	if e, ok := errors.AsType[x509.HostnameError](err); ok {
		return "certificate not valid for name " + e.Host
	}
	if e, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return describeInvalid(e)
	}
	if e, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return "certificate verification failed: " + e.Err.Error()
	}
	return ""
}

func describeInvalid(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.Expired:
		// x509 uses one reason for both ends of the validity window.
		if e.Cert != nil && time.Now().Before(e.Cert.NotBefore) {
			return "certificate not yet valid (check clocks)"
		}
		return "certificate expired"
	case x509.IncompatibleUsage:
		return "certificate not valid for this use (wrong extended key usage)"
	case x509.NotAuthorizedToSign:
		return "certificate issuer is not a CA"
	}
	return "invalid certificate: " + e.Error()
}

// certAlerts are the TLS alerts a peer sends when it rejects our
// certificate (RFC 8446 §6.2), by code.
var certAlerts = map[tls.AlertError]bool{
	42: true, 43: true, 44: true, 45: true, 46: true, 48: true, 116: true,
}

// describeRemoteAlert handles alerts the peer sent us. TLS 1.3 clients
// usually learn that the server refused their certificate only here, on
// the first read after a "successful" handshake.
func describeRemoteAlert(err error) string {
	a, ok := remoteAlert(err)
	if !ok {
		return ""
	}
	text := strings.TrimPrefix(a.Error(), "tls: ")
	if certAlerts[a] {
		return "remote refused our certificate: " + text
	}
	return "remote aborted the handshake: " + text
}

// remoteAlert recovers the alert code from crypto/tls's remote-error value.
// Its type is unexported, but it prints exactly like tls.AlertError, so
// matching the text is stable.
var quicRemoteAlert = regexp.MustCompile(`CRYPTO_ERROR 0x1[0-9a-f]{2} \(remote\)(?: \(frame type: 0x[0-9a-f]+\))?: (tls: [a-z0-9 ]+)`)

func remoteAlert(err error) (tls.AlertError, bool) {
	var msg string
	if opErr, ok := errors.AsType[*net.OpError](err); ok && opErr.Op == "remote error" && opErr.Err != nil {
		msg = opErr.Err.Error()
	} else if m := quicRemoteAlert.FindStringSubmatch(err.Error()); m != nil {
		// QUIC carries TLS alerts as CRYPTO_ERROR transport errors; quic-go
		// formats them as "CRYPTO_ERROR 0x12a (remote): tls: bad certificate".
		// Matched on text because this package stays stdlib-only.
		msg = m[1]
	} else {
		return 0, false
	}
	for code := range 256 {
		if tls.AlertError(code).Error() == msg {
			return tls.AlertError(code), true
		}
	}
	return 0, false
}

// describeLocal handles errors crypto/tls creates without a type to match.
func describeLocal(err error) string {
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return "peer did not speak TLS"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed during handshake"
	}
	if strings.Contains(err.Error(), "client didn't provide a certificate") {
		return "client presented no certificate"
	}
	return ""
}
