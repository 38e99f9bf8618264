package wstun

import (
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/tlsaccept"
)

// newHandshakeListener completes TLS handshakes in their own goroutines
// (tlsaccept) and hands only authenticated connections to Accept. A slow
// or hostile client cannot hold up others, and each refusal is logged once
// with its reason. tune, when set, applies socket options to each
// accepted connection before its handshake.
func newHandshakeListener(ln net.Listener, tc *tls.Config, timeout time.Duration, log *zap.Logger,
	tune func(net.Conn)) *tlsaccept.Listener {
	return tlsaccept.New(ln, tc, timeout, tlsaccept.Hooks{
		Accepted: func(c *tls.Conn) {
			if tune != nil {
				tune(c.NetConn())
			}
		},
		Refused: func(c *tls.Conn, err error) {
			log.Warn("tunnel handshake refused",
				zap.String("remote", c.RemoteAddr().String()),
				zap.String("reason", certs.DescribeVerifyError(err)))
		},
		Ready: func(c *tls.Conn) net.Conn {
			cs := c.ConnectionState()
			if isEnrol(&cs) {
				log.Info("enrolment connection", zap.String("remote", c.RemoteAddr().String()))
				return enrolConn{c}
			}
			log.Info("edge authenticated",
				zap.String("remote", c.RemoteAddr().String()),
				zap.String("peer", peerName(cs)),
				zap.String("cert_fingerprint", certs.Fingerprint(cs.PeerCertificates[0])))
			return c
		},
	})
}
