package wstun

import (
	"crypto/tls"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/tlsaccept"
	"github.com/strait/strait/tunnel/internal/refusals"
)

// newHandshakeListener completes TLS handshakes in their own goroutines
// (tlsaccept) and hands only authenticated connections to Accept. A slow
// or hostile client cannot hold up others, and each refusal is counted and
// logged with its reason, limited (refused): anyone who reaches the port
// can cause them. tune, when set, applies socket options to each accepted
// connection before its handshake.
func newHandshakeListener(ln net.Listener, tc *tls.Config, timeout time.Duration, log *zap.Logger,
	refused *refusals.Log, tune func(net.Conn)) *tlsaccept.Listener {
	return tlsaccept.New(ln, tc, timeout, tlsaccept.Hooks{
		Accepted: func(c *tls.Conn) {
			if tune != nil {
				tune(c.NetConn())
			}
		},
		Refused: func(c *tls.Conn, err error) {
			refused.Note(c.RemoteAddr(), err)
		},
		Ready: func(c *tls.Conn) net.Conn {
			cs := c.ConnectionState()
			if isEnrol(&cs) {
				// Debug: anyone can open one; the enrolment handler logs
				// what came of it (an enrolled edge, or a sampled refusal).
				log.Debug("enrolment connection", zap.String("remote", c.RemoteAddr().String()))
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
