package wstun

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/strait/strait/tunnel"
)

// Dialer opens tunnel sessions to one relay. It implements tunnel.Dialer.
type Dialer struct {
	addr string // host:port of the relay
	tls  *tls.Config
	cfg  Config
	ycfg *yamux.Config
	so   sockopts
}

// NewDialer returns a Dialer for the relay at addr (host:port). tlsConfig
// must carry the client certificate and pin the project CA; it is cloned.
func NewDialer(addr string, tlsConfig *tls.Config, cfg Config) (*Dialer, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("wstun: relay address %q: %w", addr, err)
	}
	cfg, ycfg, tc, err := prepare(cfg, tlsConfig)
	if err != nil {
		return nil, err
	}
	so, err := resolveSockopts(cfg, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("wstun: %w", err)
	}
	return &Dialer{addr: addr, tls: tc, cfg: cfg, ycfg: ycfg, so: so}, nil
}

// Addr returns the relay address.
func (d *Dialer) Addr() string { return d.addr }

// Dial connects, completes the mutual TLS handshake and the WebSocket
// upgrade, and starts a yamux client session on top.
func (d *Dialer) Dial(ctx context.Context) (tunnel.Session, error) {
	wd := websocket.Dialer{
		NetDialContext:   (&net.Dialer{KeepAlive: 30 * time.Second, Control: d.control}).DialContext,
		TLSClientConfig:  d.tls,
		HandshakeTimeout: d.cfg.HandshakeTimeout,
		ReadBufferSize:   32 << 10,
		WriteBufferSize:  32 << 10,
	}
	ws, resp, err := wd.DialContext(ctx, "wss://"+d.addr+Path, d.cfg.compressOffer())
	if err != nil {
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("wstun: dial %s: %w", d.addr, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	conn := newWSConn(ws)
	conn.negotiated(d.cfg, d.cfg.compressAccepted(resp))
	conn.sock = socketInfo(ws.NetConn())
	logSocket(d.cfg.Logger, ws.RemoteAddr(), conn.sock)
	mux, err := yamux.Client(conn, d.ycfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("wstun: %w", err)
	}
	info := tunnel.Info{LocalAddr: ws.LocalAddr(), RemoteAddr: ws.RemoteAddr(), Congestion: conn.sock.Congestion}
	if tc, ok := ws.NetConn().(*tls.Conn); ok {
		info.PeerName = peerName(tc.ConnectionState())
	}
	return newSession(mux, conn, info, d.cfg), nil
}

// control sets the socket options before the socket connects. A failure is
// logged, not fatal: resolveSockopts checked them when the Dialer was made,
// and a tunnel on the kernel's defaults beats no tunnel.
func (d *Dialer) control(_, address string, rc syscall.RawConn) error {
	if err := d.so.control(rc); err != nil {
		d.cfg.Logger.Warn("tunnel socket options not applied", zap.String("relay", address), zap.Error(err))
	}
	return nil
}

func peerName(cs tls.ConnectionState) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

var _ tunnel.Dialer = (*Dialer)(nil)
