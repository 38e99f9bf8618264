package quictun

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/zap"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/internal/refusals"
	"github.com/strait/strait/tunnel/quictun/fec"
)

// Listener accepts QUIC tunnel sessions on one UDP socket. It implements
// tunnel.Listener.
type Listener struct {
	pc  *fec.Conn // the UDP socket, with FEC for the edges that speak it
	tr  *quic.Transport
	ln  *quic.Listener
	log *zap.Logger
	// refused counts and logs (limited) the handshakes that failed.
	refused *refusals.Log
	// window is the configured stream window, what each stream reports
	// as Buffered.
	window uint64
	// compressMinRTT is Config.CompressMinRTT, for every session.
	compressMinRTT time.Duration

	// The socket carries every accepted session, so it is released only
	// once the listener is closed and the last session has ended.
	mu       sync.Mutex
	live     int
	closed   bool
	released bool
}

// Listen serves QUIC tunnels on udp. tlsConfig must carry the relay's
// certificate and require client certificates from clientCAs (see
// certs.ServerConfig); its VerifyConnection, if any, runs after the chain
// is verified (the relay's revocation list). Every handshake that fails,
// for whatever reason (certificate, signature, ALPN, timeout), is counted
// (RefusedHandshakes) and logged with its reason once the connection is
// gone: the first ones each, then, since anyone can cause them, at most one
// per 10s with the number left out.
func Listen(udp *net.UDPConn, tlsConfig *tls.Config, cfg Config) (*Listener, error) {
	if err := ValidCompression(cfg.Compression); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.Named("tunnel.quic")
	tc := tlsConfig.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = cfg.protocols()
	clientCAs := tc.ClientCAs
	if clientCAs == nil {
		return nil, errors.New("quictun: tls config has no client CAs")
	}
	// Ask for a certificate but verify it ourselves: the TLS stack would
	// refuse a missing one with an error that names no reason.
	tc.ClientAuth = tls.RequestClientCert
	then := tc.VerifyConnection
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyClient(cs, clientCAs); err != nil {
			return err
		}
		if then != nil {
			return then(cs)
		}
		return nil
	}
	sizeBuffers(udp)
	// Every edge's packets pass the FEC wrapper, which hands plain QUIC
	// packets through and answers in FEC only edges that speak it. The
	// price for plain edges: quic-go reads one datagram per call and sends
	// without GSO on a wrapped socket.
	pc, err := fec.NewConn(udp, fec.Answer, fec.Shape{})
	if err != nil {
		return nil, err
	}
	refused := refusals.New(log, tunnel.TransportQUIC, refusalLimit)
	tr := &quic.Transport{Conn: pc, ConnContext: func(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
		if pc.SpeaksFEC(info.RemoteAddr) { // a long path: see phase.go
			ctx = watchSlowStart(ctx)
		}
		return watchHandshake(ctx, info.RemoteAddr, refused), nil
	}}
	if len(cfg.ResetSecret) > 0 {
		key := quic.StatelessResetKey(sha256.Sum256(append([]byte("strait quic stateless reset\x00"), cfg.ResetSecret...)))
		tr.StatelessResetKey = &key
	}
	ln, err := tr.Listen(tc, cfg.quicConfig(false))
	if err != nil {
		tr.Close()
		return nil, err
	}
	checkBuffers(udp, log)
	return &Listener{pc: pc, tr: tr, ln: ln, log: log, refused: refused, window: cfg.StreamWindow,
		compressMinRTT: cfg.CompressMinRTT}, nil
}

// verifyClient does what tls.RequireAndVerifyClientCert would: a chain to
// the project CA, valid now, usable for client authentication.
func verifyClient(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errNoClientCert
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	return err
}

// errNoClientCert carries the same text as crypto/tls's own error so that
// certs.DescribeVerifyError describes both transports alike.
var errNoClientCert = errors.New("tls: client didn't provide a certificate")

// handshakeWatch logs a connection that ends before Accept took it: a
// refused handshake. crypto/tls checks the client's signature and the ALPN
// before any hook of ours runs, so the only place that sees every refusal
// with its reason is the end of the connection (quic-go cancels the
// connection's context with the error that closed it).
type handshakeWatch struct{ stop func() bool }

type handshakeWatchKey struct{}

func watchHandshake(ctx context.Context, remote net.Addr, refused *refusals.Log) context.Context {
	w := &handshakeWatch{}
	ctx = context.WithValue(ctx, handshakeWatchKey{}, w)
	w.stop = context.AfterFunc(ctx, func() {
		cause := context.Cause(ctx)
		if errors.Is(cause, quic.ErrServerClosed) || errors.Is(cause, quic.ErrTransportClosed) {
			return // the listener is closing, not refusing
		}
		refused.Note(remote, cause)
	})
	return ctx
}

// accepted stops the watch of a connection that got through.
func accepted(c *quic.Conn) {
	if w, ok := c.Context().Value(handshakeWatchKey{}).(*handshakeWatch); ok {
		w.stop()
	}
}

// welcomeVersion is the one byte the relay sends on a unidirectional stream
// once it has accepted an edge (see awaitWelcome).
const welcomeVersion = 1

// Accept waits for the next authenticated session and welcomes it. Once
// Close has been called it returns net.ErrClosed.
func (l *Listener) Accept(ctx context.Context) (tunnel.Session, error) {
	var conn *quic.Conn
	for {
		c, err := l.ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, net.ErrClosed
		}
		accepted(c)
		// Counted before the welcome, so that a Close from now on leaves
		// the socket to this session; after Close, quic-go still hands out
		// what it had queued, which nobody will serve.
		if !l.hold() {
			c.CloseWithError(codeNoError, "relay closing")
			return nil, net.ErrClosed
		}
		// The handshake proved the edge receives at its address: from now
		// on it may be answered in FEC (see fec.Conn.Trust).
		context.AfterFunc(c.Context(), l.pc.Trust(c.RemoteAddr()))
		if err := welcome(c); err != nil {
			l.log.Debug("could not welcome edge", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
			c.CloseWithError(codeNoError, "welcome failed")
			l.sessionEnded()
			continue
		}
		conn = c
		break
	}
	sess := newSession(conn, l.window, l.compressMinRTT, l.sessionEnded)
	if sess.slowStart = slowStartWatchOf(conn.Context()); sess.slowStart != nil {
		remote := conn.RemoteAddr()
		sess.longPath = func() bool { return l.pc.SpeaksFEC(remote) }
	}
	l.log.Info("edge authenticated", zap.String("transport", string(tunnel.TransportQUIC)),
		zap.Stringer("remote", conn.RemoteAddr()), zap.String("peer", sess.info.PeerName),
		zap.Bool("compressed", sess.compressed), zap.Bool("fec", l.pc.SpeaksFEC(conn.RemoteAddr())))
	// The relay sends the responses, so its side of a session is the one
	// whose window bounds streaming throughput.
	context.AfterFunc(conn.Context(), func() {
		logEnded(l.log, sess, zap.Stringer("remote", conn.RemoteAddr()), zap.String("peer", sess.info.PeerName))
	})
	return sess, nil
}

// welcome sends the welcome byte; neither call waits for the peer.
func welcome(c *quic.Conn) error {
	st, err := c.OpenUniStream()
	if err != nil {
		return err
	}
	if _, err := st.Write([]byte{welcomeVersion}); err != nil {
		return err
	}
	return st.Close()
}

// Close stops accepting new sessions. Sessions already accepted stay up;
// the socket closes when the last of them ends. Connections that finished
// their handshake but were not accepted yet are closed.
func (l *Listener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	err := l.ln.Close()
	// quic-go keeps handshaken connections queued for Accept after its
	// listener closed; with a session still holding the socket open they
	// would stay up until their edges gave up.
	for {
		c, aerr := l.ln.Accept(context.Background()) // returns at once after Close
		if aerr != nil {
			break
		}
		accepted(c)
		c.CloseWithError(codeNoError, "relay closing")
	}
	l.mu.Lock()
	l.maybeReleaseLocked()
	l.mu.Unlock()
	return err
}

// hold counts a session about to be handed out, unless the listener is
// closed.
func (l *Listener) hold() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.live++
	return true
}

func (l *Listener) sessionEnded() {
	l.mu.Lock()
	l.live--
	l.maybeReleaseLocked()
	l.mu.Unlock()
}

func (l *Listener) maybeReleaseLocked() {
	if l.closed && l.live == 0 && !l.released {
		l.released = true
		l.tr.Close()
		l.pc.Close()
	}
}

// RefusedHandshakes is how many handshakes have failed, logged or not.
func (l *Listener) RefusedHandshakes() uint64 { return l.refused.Count() }

// refusalLimit is how many refused handshakes are logged; tests change it.
var refusalLimit = refusals.Default

// Addr is the UDP address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

var _ tunnel.Listener = (*Listener)(nil)
