package wstun

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/strait/strait/tunnel/wstun/internal/yamux"
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
	// answer is what the relay's last 101 said (answerUnknown, answerPlain
	// or answerCompressed): when it accepted early data, the next session
	// is used before its 101 (early.go). A failed check resets it.
	answer atomic.Int32
}

// NewDialer returns a Dialer for the relay at addr (host:port). tlsConfig
// must carry the client certificate and pin the project CA; it is cloned.
func NewDialer(addr string, tlsConfig *tls.Config, cfg Config) (*Dialer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("wstun: relay address %q: %w", addr, err)
	}
	cfg, ycfg, tc, err := prepare(cfg, tlsConfig)
	if err != nil {
		return nil, err
	}
	if tc.ServerName == "" {
		tc.ServerName = host // as gorilla would: the TLS handshake is ours (dialTLS)
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
// upgrade, and starts a yamux client session on top. When the relay's last
// 101 accepted early data, the session is returned as soon as the upgrade
// request is written, and its 101 is checked when it arrives (early.go).
func (d *Dialer) Dial(ctx context.Context) (tunnel.Session, error) {
	answer := d.answer.Load()
	var tc *tls.Conn
	wd := websocket.Dialer{
		NetDialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.dialTLS(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc = c
			if answer == answerUnknown {
				return c, nil
			}
			return &earlyConn{Conn: c, compressed: answer == answerCompressed,
				timeout: d.cfg.HandshakeTimeout, failed: d.earlyFailed, forget: d.forget}, nil
		},
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
	compressed := d.cfg.compressAccepted(resp)
	if answer == answerUnknown {
		d.answer.Store(rememberAnswer(resp, compressed))
	}
	conn := newWSConn(ws)
	conn.negotiated(d.cfg, compressed)
	conn.sock = socketInfo(tc)
	logSocket(d.cfg.Logger, ws.RemoteAddr(), conn.sock)
	mux, err := yamux.Client(conn, d.ycfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("wstun: %w", err)
	}
	info := tunnel.Info{LocalAddr: ws.LocalAddr(), RemoteAddr: ws.RemoteAddr(), Congestion: conn.sock.Congestion,
		PeerName: peerName(tc.ConnectionState())}
	return newSession(mux, conn, info, d.cfg), nil
}

// dialTLS connects with the tunnel's socket options and completes the TLS
// handshake; gorilla then writes the upgrade request on the connection.
func (d *Dialer) dialTLS(ctx context.Context, network, addr string) (*tls.Conn, error) {
	raw, err := (&net.Dialer{KeepAlive: 30 * time.Second, Control: d.control}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

// forget makes the next dial wait for the relay's 101.
func (d *Dialer) forget() { d.answer.Store(answerUnknown) }

// earlyFailed ends early data for this relay until a dial sees its 101
// again: a session used before its 101 got a different answer or none.
func (d *Dialer) earlyFailed(err error) {
	d.forget()
	d.cfg.Logger.Warn("relay did not accept a session already in use; closed it",
		zap.String("relay", d.addr), zap.Error(err))
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
