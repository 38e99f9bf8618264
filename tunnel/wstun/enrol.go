package wstun

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"slices"

	"github.com/strait/strait/certs/enrol"
)

// enrolTLS lets a TLS client that asks for enrol.ALPN in, without a client
// certificate: an edge enrolling has none yet. Such a connection reaches
// only the enrolment handler (see serveHTTP), never the tunnel upgrade.
// Every other client meets tc unchanged.
func enrolTLS(tc *tls.Config) {
	open := tc.Clone()
	open.ClientAuth = tls.NoClientCert
	open.ClientCAs = nil
	open.VerifyConnection = nil
	open.NextProtos = []string{enrol.ALPN}
	tc.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, enrol.ALPN) {
			return open, nil
		}
		return nil, nil
	}
}

// isEnrol reports whether the TLS handshake was for enrolment.
func isEnrol(cs *tls.ConnectionState) bool {
	return cs != nil && cs.NegotiatedProtocol == enrol.ALPN
}

// enrolConn hides an enrolment connection's *tls.Conn from net/http, which
// would otherwise look for a TLSNextProto handler for the enrolment ALPN
// protocol and, finding none, close the connection; served as plain
// HTTP/1.1 it is marked by markEnrol instead.
type enrolConn struct{ net.Conn }

type enrolKey struct{}

// markEnrol is the server's ConnContext: requests on enrolment
// connections carry enrolKey in their context.
func markEnrol(ctx context.Context, c net.Conn) context.Context {
	if _, ok := c.(enrolConn); ok {
		return context.WithValue(ctx, enrolKey{}, true)
	}
	return ctx
}

// serveHTTP routes enrolment connections to the enrolment handler and
// everything else, which carries a verified client certificate, to the
// tunnel endpoint, or to the enrolment handler for a renewal.
func (l *Listener) serveHTTP(tunnelMux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Value(enrolKey{}) != nil {
			l.cfg.Enrol.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "client certificate required", http.StatusForbidden)
			return
		}
		if r.URL.Path == enrol.PathRenew && l.cfg.Enrol != nil {
			l.cfg.Enrol.ServeHTTP(w, r) // an enrolled edge renewing its certificate
			return
		}
		tunnelMux.ServeHTTP(w, r)
	})
}
