package quictun

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun/fec"
)

// Dialer opens QUIC tunnel sessions to one relay. It implements
// tunnel.Dialer.
type Dialer struct {
	addr    string
	tls     *tls.Config
	cfg     Config
	checked sync.Once // UDP buffer sizes: report once, not on every redial
	// welcomed is set once the relay has welcomed a session of this
	// Dialer, and cleared when a later welcome fails (see Dial).
	welcomed atomic.Bool
	// shortPath is the relay address (as resolved) to which a session
	// found the path shorter than Config.FECMinRTT: later sessions to it
	// are dialed without FEC (see fitFEC). Empty until one has.
	shortPath atomic.Pointer[string]
}

// NewDialer returns a Dialer for the relay at addr (host:port, UDP).
// tlsConfig must carry the client certificate and pin the project CA.
func NewDialer(addr string, tlsConfig *tls.Config, cfg Config) (*Dialer, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("quictun: relay address %q: %w", addr, err)
	}
	if err := ValidCompression(cfg.Compression); err != nil {
		return nil, err
	}
	if err := cfg.FEC.Validate(); err != nil {
		return nil, err
	}
	return &Dialer{addr: addr, tls: clientTLS(tlsConfig, cfg.protocols()), cfg: cfg.withDefaults()}, nil
}

func clientTLS(c *tls.Config, protos []string) *tls.Config {
	tc := c.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = protos
	return tc
}

// Addr returns the relay address.
func (d *Dialer) Addr() string { return d.addr }

// Dial resolves the relay, opens a UDP socket for this session and completes
// the QUIC handshake with mutual TLS. The socket is closed with the session.
func (d *Dialer) Dial(ctx context.Context) (tunnel.Session, error) {
	raddr, err := net.ResolveUDPAddr("udp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("quictun: dial %s: %w", d.addr, err)
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("quictun: dial %s: %w", d.addr, err)
	}
	sizeBuffers(udp)
	// Only an FEC session pays for the wrapper: quic-go batches reads and
	// uses GSO on a bare *net.UDPConn alone.
	var pc net.PacketConn = udp
	var fc *fec.Conn
	fields := []zap.Field{zap.String("relay", d.addr)}
	if d.cfg.FEC.Enabled() && !d.isShort(raddr) {
		fc, err = fec.NewConn(udp, fec.Always, d.cfg.FEC)
		if err != nil {
			udp.Close()
			return nil, fmt.Errorf("quictun: dial %s: %w", d.addr, err)
		}
		pc = fc
		fields = append(fields, zap.Inline(fecStats{fc}))
	}
	tr := &quic.Transport{Conn: pc}
	conn, err := tr.Dial(ctx, raddr, d.tls, d.cfg.quicConfig(true))
	if err == nil {
		err = d.welcome(ctx, conn)
	}
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, fmt.Errorf("quictun: dial %s: %w", d.addr, err)
	}
	log := d.cfg.Logger.Named("tunnel.quic")
	d.checked.Do(func() { checkBuffers(udp, log, zap.String("relay", d.addr)) })
	s := newSession(conn, d.cfg.StreamWindow, d.cfg.CompressMinRTT, func() { tr.Close(); pc.Close() })
	if fc != nil && !d.fitFEC(conn, fc, raddr, log) {
		// The handshake's round trips include the relay's TLS work, so a
		// short path may show as long until the first streams' packets.
		s.fitFEC = func() bool { return d.fitFEC(conn, fc, raddr, log) }
	}
	context.AfterFunc(conn.Context(), func() { logEnded(log, s, fields...) })
	return s, nil
}

// fitFEC fits FEC to the path of a session dialed with it, conn to raddr,
// as far as quic-go has measured its least round trip, and reports whether
// it is done: the path showed itself shorter than Config.FECMinRTT. Then
// the session's Conn, fc, stops sending FEC frames, and later sessions to
// raddr are dialed bare, with quic-go's batched reads and GSO.
//
// A round trip can only show as too long: the handshake's include the
// relay's TLS work, and on a loaded host each waits for a CPU (the lab's
// loopback showed new sessions at 2–25 ms under load, and 0.2 ms). So a
// session keeps asking as its streams open, and a short path is not
// doubted later. What can make it long is the relay's name resolving to
// another address: that one starts with FEC again.
func (d *Dialer) fitFEC(conn *quic.Conn, fc *fec.Conn, raddr *net.UDPAddr, log *zap.Logger) (done bool) {
	rtt := conn.ConnectionStats().MinRTT
	if tunnel.LongPath(rtt, d.cfg.FECMinRTT) {
		return false
	}
	fc.SendPlain()
	addr := raddr.String()
	if old := d.shortPath.Swap(&addr); old == nil || *old != addr {
		log.Info("QUIC path shorter than quic_fec_min_rtt: sessions send without forward error correction",
			zap.String("relay", d.addr), zap.Stringer("address", raddr), zap.Duration("min_rtt", rtt),
			zap.Duration("fec_min_rtt", d.cfg.FECMinRTT))
	}
	return true
}

// isShort reports whether a session to raddr found the path too short for
// FEC (see fitFEC).
func (d *Dialer) isShort(raddr *net.UDPAddr) bool {
	p := d.shortPath.Load()
	return p != nil && *p == raddr.String()
}

// logEnded records, at debug level, what a session's sender saw of the path
// over its life: on a lossy border a loss rate of a few percent and a window
// of a few dozen packets say the session was bounded by congestion control.
func logEnded(log *zap.Logger, s *session, fields ...zap.Field) {
	ce := log.Check(zap.DebugLevel, "quic session ended")
	if ce == nil {
		return
	}
	c := s.SenderState()
	ce.Write(append(fields, zap.Uint64("cwnd_bytes", c.Window), zap.Duration("srtt", c.SmoothedRTT),
		zap.Duration("min_rtt", c.MinRTT), zap.Uint64("packets_sent", c.PacketsSent),
		zap.Uint64("packets_lost", c.PacketsLost), zap.Float64("loss_rate", c.LossRate()))...)
}

// fecStats adds an FEC session's counters, as they are when logged, to
// its end-of-session record: how many lost packets the FEC rebuilt.
type fecStats struct{ c *fec.Conn }

func (f fecStats) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	s := f.c.Stats()
	enc.AddUint64("fec_data_sent", s.DataSent)
	enc.AddUint64("fec_parity_sent", s.ParitySent)
	enc.AddUint64("fec_recovered", s.Recovered)
	enc.AddUint64("fec_unrecovered", s.Unrecovered)
	enc.AddUint64("fec_dropped", s.Dropped)
	return nil
}

// welcome waits for the relay's welcome on a new session, unless the relay
// has already welcomed this edge: then the session is used at once, one
// round trip earlier, and the welcome is awaited in the background.
//
// The welcome leaves the relay only when its side of the handshake is done,
// half a round trip after the edge's, and reaches the edge a whole round
// trip after the edge could send. A burst of streams waiting for new
// sessions would wait that round trip too. Sending early is safe: the
// relay reads no stream before it has checked the edge's certificate and
// welcomed it, and if it refuses instead, it closes the connection and the
// streams fail unanswered (the edge resends requests that got no answer).
// A failed welcome clears welcomed, so the next dial waits again and a
// refused edge is told by the dial, not by broken streams.
func (d *Dialer) welcome(ctx context.Context, conn *quic.Conn) error {
	if !d.welcomed.Load() {
		if err := awaitWelcome(ctx, conn); err != nil {
			return err
		}
		d.welcomed.Store(true)
		return nil
	}
	go func() { // ends with the welcome, the connection, or the handshake timeout
		ctx, cancel := context.WithTimeout(conn.Context(), d.cfg.HandshakeTimeout)
		defer cancel()
		err := awaitWelcome(ctx, conn)
		var local *quic.ApplicationError
		if err != nil && !(errors.As(err, &local) && !local.Remote) { // not closed by this edge
			d.welcomed.Store(false)
			d.cfg.Logger.Named("tunnel.quic").Warn("relay did not welcome a session already in use; closed it",
				zap.String("relay", d.addr), zap.Error(err))
		}
	}()
	return nil
}

// awaitWelcome waits for the relay's welcome. In TLS 1.3 the client's side
// of the handshake completes before the server has checked the client
// certificate; only the welcome proves the relay accepted this edge, so a
// refused edge never reports a session as up.
func awaitWelcome(ctx context.Context, conn *quic.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	context.AfterFunc(conn.Context(), cancel) // a refusal closes the connection
	fail := func(err error) error {
		if cause := context.Cause(conn.Context()); cause != nil {
			err = cause // the relay's reason beats "context canceled"
		}
		conn.CloseWithError(codeNoError, "no welcome")
		return err
	}
	st, err := conn.AcceptUniStream(ctx)
	if err != nil {
		return fail(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return fail(err)
	}
	if b[0] != welcomeVersion {
		return fail(fmt.Errorf("relay speaks tunnel version %d, want %d", b[0], welcomeVersion))
	}
	return nil
}

var _ tunnel.Dialer = (*Dialer)(nil)
