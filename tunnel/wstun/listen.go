package wstun

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/strait/strait/tunnel/wstun/internal/yamux"
	"go.uber.org/zap"

	"github.com/strait/strait/certs/tlsaccept"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/internal/refusals"
)

// Listener accepts tunnel sessions from edges on one TCP listener. It
// implements tunnel.Listener. TLS handshakes run before HTTP sees the
// connection, so every refused edge is counted (RefusedHandshakes) and
// logged with its reason: the first ones each, then, since anyone can
// cause them, at most one per 10s with the number left out.
type Listener struct {
	cfg     Config
	ycfg    *yamux.Config
	log     *zap.Logger
	refused *refusals.Log
	ln      *tlsaccept.Listener
	srv     *http.Server

	sessions chan tunnel.Session
	closed   chan struct{}
	once     sync.Once
	serveErr chan error
}

// Listen serves the tunnel endpoint on ln. tlsConfig must require and verify
// client certificates against the project CA (see certs.ServerConfig); Listen
// refuses one that does not.
func Listen(ln net.Listener, tlsConfig *tls.Config, cfg Config) (*Listener, error) {
	if tlsConfig == nil || tlsConfig.ClientAuth != tls.RequireAndVerifyClientCert || tlsConfig.ClientCAs == nil {
		// The tunnel is mutually authenticated or not at all: a looser
		// config would let any TLS client open sessions to the providers.
		return nil, errors.New("wstun: the tunnel listener needs tls.RequireAndVerifyClientCert and ClientCAs (certs.ServerConfig)")
	}
	cfg, ycfg, tc, err := prepare(cfg, tlsConfig)
	if err != nil {
		return nil, err
	}
	so, err := resolveSockopts(cfg, cfg.Logger.Named("tunnel.ws"))
	if err != nil {
		return nil, fmt.Errorf("wstun: %w", err)
	}
	l := &Listener{
		cfg:      cfg,
		ycfg:     ycfg,
		log:      cfg.Logger.Named("tunnel.ws"),
		refused:  refusals.New(cfg.Logger.Named("tunnel.ws"), tunnel.TransportWS, refusalLimit),
		sessions: make(chan tunnel.Session),
		closed:   make(chan struct{}),
		serveErr: make(chan error, 1),
	}
	if cfg.Enrol != nil {
		enrolTLS(tc)
	}
	l.ln = newHandshakeListener(ln, tc, cfg.HandshakeTimeout, l.log, l.refused, so.applyConn)
	mux := http.NewServeMux()
	mux.HandleFunc(Path, l.upgrade)
	mux.HandleFunc(DiagDownloadPath, diagDownload)
	l.srv = &http.Server{
		Handler:           l.serveHTTP(mux),
		ConnContext:       markEnrol,
		ReadHeaderTimeout: cfg.HandshakeTimeout,
		// A connection not upgraded (enrolment, which needs no
		// certificate, a renewal, a diagnosis download) is closed once
		// idle: otherwise anyone could hold connections open for good.
		IdleTimeout: cfg.HandshakeTimeout,
		ErrorLog:    mustStdLog(l.log),
	}
	go func() { l.serveErr <- l.srv.Serve(l.ln) }()
	return l, nil
}

var upgrader = websocket.Upgrader{
	ReadBufferSize:  32 << 10,
	WriteBufferSize: 32 << 10,
	// Edges are not browsers; the mutual TLS handshake is the authentication.
	CheckOrigin: func(*http.Request) bool { return true },
}

func (l *Listener) upgrade(w http.ResponseWriter, r *http.Request) {
	answer, compressed := l.cfg.compressAnswer(r)
	if answer == nil {
		answer = http.Header{}
	}
	answer.Set(earlyHeader, "1")
	ws, err := upgrader.Upgrade(pipelineWriter{w}, r, answer)
	if err != nil {
		l.log.Warn("tunnel upgrade failed", zap.String("remote", r.RemoteAddr), zap.Error(err))
		return
	}
	conn := newWSConn(ws)
	conn.negotiated(l.cfg, compressed)
	conn.sock = socketInfo(ws.NetConn())
	logSocket(l.log, ws.RemoteAddr(), conn.sock)
	mux, err := yamux.Server(conn, l.ycfg)
	if err != nil {
		conn.Close()
		return
	}
	info := tunnel.Info{LocalAddr: ws.LocalAddr(), RemoteAddr: ws.RemoteAddr(), Congestion: conn.sock.Congestion}
	if r.TLS != nil {
		info.PeerName = peerName(*r.TLS)
	}
	sess := newSession(mux, conn, info, l.cfg)
	select {
	case l.sessions <- sess:
	case <-l.closed:
		sess.Close()
	case <-time.After(l.cfg.HandshakeTimeout):
		l.log.Warn("no one accepted the tunnel session; closing it", zap.String("remote", r.RemoteAddr))
		sess.Close()
	}
}

// Accept waits for the next authenticated session.
func (l *Listener) Accept(ctx context.Context) (tunnel.Session, error) {
	select {
	case s := <-l.sessions:
		return s, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close stops accepting new sessions and waits for the serving goroutines.
// Sessions already accepted stay up; their owner closes them.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.closed)
		_ = l.srv.Close()
		l.ln.Wait()
		if err := <-l.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Warn("tunnel listener stopped", zap.Error(err))
		}
	})
	return nil
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// RefusedHandshakes is how many TLS handshakes have failed, logged or not.
func (l *Listener) RefusedHandshakes() uint64 { return l.refused.Count() }

// refusalLimit is how many refused handshakes are logged; tests change it.
var refusalLimit = refusals.Default

var _ tunnel.Listener = (*Listener)(nil)

// mustStdLog routes net/http's own messages (malformed requests and the
// like) to zap at debug: refusals that matter are logged by the handshake.
func mustStdLog(log *zap.Logger) *stdlog.Logger {
	l, err := zap.NewStdLogAt(log, zap.DebugLevel)
	if err != nil {
		panic(err) // only for an invalid level constant
	}
	return l
}
