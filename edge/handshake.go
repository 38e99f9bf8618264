package edge

import (
	"crypto/tls"
	"net"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs/tlsaccept"
)

// acceptClients is the client listener as http.Server sees it: each
// connection's TLS handshake runs on a goroutine of its own (tlsaccept)
// and Accept returns the connection only once its handshake is done. A
// connection counts among the arrivals from its TCP accept until its
// handshake fails or net/http is done with it.
//
// Why: memory per open stream. net/http running the handshake itself left
// every open client connection a 16 KiB stack (see tlsaccept), and the
// runtime, which starts new goroutines at the average stack size it sees,
// gave every other goroutine (net/http's background reader of each
// connection among them) 8 KiB.
func acceptClients(ln net.Listener, cfg *tls.Config, timeout time.Duration, arr *arrivals, log *zap.Logger) *tlsaccept.Listener {
	return tlsaccept.New(ln, cfg, timeout, tlsaccept.Hooks{
		Accepted: func(c *tls.Conn) { arr.arrive(c) },
		Refused: func(c *tls.Conn, err error) {
			// Scanners and broken clients: noise at info, as net/http has it.
			log.Debug("client TLS handshake failed", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
		},
		Dropped: func(c *tls.Conn) { arr.leave(c) },
	})
}

// serverTLS is cfg as http.Server.ServeTLS would use it: HTTP/2 and
// HTTP/1.1 offered in ALPN after what cfg offers already.
func serverTLS(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	for _, p := range []string{"h2", "http/1.1"} {
		if !slices.Contains(cfg.NextProtos, p) {
			cfg.NextProtos = append(cfg.NextProtos, p)
		}
	}
	return cfg
}
