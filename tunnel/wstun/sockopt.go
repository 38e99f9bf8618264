package wstun

// TCP socket options of the tunnel's connections: the congestion control and
// TCP_NOTSENT_LOWAT, on the edge's dialled socket and on every socket the
// relay accepts.
//
// Congestion control: a multiplexed tunnel puts many clients' streams on one
// congestion window, so the algorithm decides what the whole session gets
// through a lossy border. A loss-based one (reno, cubic) halves its window on
// every loss; bbr paces at the measured bottleneck rate and shrugs random
// loss off. "auto" picks the best the kernel lets this process use; a name
// forces one, for comparisons (the lab pins the tunnel to the congestion
// control its cell names) or for a kernel whose default is chosen on purpose.
//
// TCP_NOTSENT_LOWAT: without it Linux lets the send buffer grow to
// tcp_wmem[2] (4 MiB by default) of data not yet sent, and on a slow link a
// stream open, a window update or a probe written now waits behind all of
// it. With it the socket takes more only while less than the mark is unsent,
// so the queue stays in wsConn's scheduler, where urgent frames overtake
// bulk (see sched.go). Bytes in flight are not counted: the mark does not cap
// throughput as long as the writer refills the socket in time.

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// CongestionAuto is the Config.TCPCongestion value (and the meaning of an
// empty one) that picks the best congestion control the kernel allows.
const CongestionAuto = "auto"

// autoPreference is what auto tries, best first. bbr keeps a window open
// through random loss, where the loss-based ones collapse; cubic recovers
// faster than reno on long paths. Anything else stays the kernel default.
var autoPreference = []string{"bbr", "cubic"}

// DefaultNotSentLowat is the TCP_NOTSENT_LOWAT of tunnel sockets when
// Config.TCPNotSentLowat is zero. 16 KiB is what latency-minded HTTP/2
// servers use: at the 120 KB/s a lossy 150 ms border leaves one reno window,
// an urgent frame waits at most ~130 ms behind it, instead of seconds behind
// a 4 MiB send buffer; at 100 Mbit/s it is 1.3 ms of data, which the writer
// refills long before the socket runs dry.
const DefaultNotSentLowat = 16 << 10

// congestionName is what the kernel accepts as a congestion control name
// (TCP_CA_NAME_MAX is 16 bytes with the terminating zero).
var congestionName = regexp.MustCompile(`^[a-z0-9_]{1,15}$`)

// ValidCongestion checks a Config.TCPCongestion value's form; whether the
// kernel has it is checked when a Dialer or Listener is made.
func ValidCongestion(v string) error {
	if v == "" || v == CongestionAuto || congestionName.MatchString(v) {
		return nil
	}
	return fmt.Errorf("tcp_congestion %q: want auto or a kernel congestion control name such as bbr, cubic or reno", v)
}

// SocketInfo is what a tunnel socket runs, read back from the kernel.
type SocketInfo struct {
	// Congestion is the congestion control; empty where unknown (not
	// Linux, or not a TCP socket).
	Congestion string
	// NotSentLowat is TCP_NOTSENT_LOWAT in bytes; 0 where unset or unknown.
	NotSentLowat int
}

// sockopts is the resolved socket policy of one Dialer or Listener.
type sockopts struct {
	congestion string // what every socket is set to; empty: the kernel default
	lowat      int    // TCP_NOTSENT_LOWAT; 0: not set
	log        *zap.Logger
}

// resolveSockopts turns the config into the options every socket gets. For
// auto it probes, once, which preferred algorithm this process may set (a
// setsockopt may load the module when the process may); a forced name the
// kernel refuses is a configuration error, reported at start rather than
// on every dial.
func resolveSockopts(cfg Config, log *zap.Logger) (sockopts, error) {
	o := sockopts{lowat: cfg.TCPNotSentLowat, log: log}
	if o.lowat == 0 {
		o.lowat = DefaultNotSentLowat
	}
	o.lowat = max(o.lowat, 0)
	want := cfg.TCPCongestion
	if err := ValidCongestion(want); err != nil {
		return o, err
	}
	if want == "" || want == CongestionAuto {
		cc, refused := pickCongestion(probeCongestion)
		o.congestion = cc
		if len(refused) > 0 {
			log.Info("tcp_congestion auto: preferred algorithms refused by the kernel",
				zap.Strings("refused", refused), zap.String("using", cc), zap.Strings("available", availableCongestion()))
		}
		return o, nil
	}
	if err := probeCongestion(want); err != nil {
		return o, fmt.Errorf("tcp_congestion %q: %w (the kernel offers: %s; load the module with modprobe tcp_%s, "+
			"allow it in net.ipv4.tcp_allowed_congestion_control or grant CAP_NET_ADMIN, or use auto)",
			want, err, strings.Join(availableCongestion(), " "), want)
	}
	o.congestion = want
	return o, nil
}

// pickCongestion returns the first of autoPreference that try (a
// setsockopt on a probe socket) accepts, and the names it refused. A name
// missing from the kernel's available list is still tried: the setsockopt
// loads its module when this process may. Empty means none was accepted:
// sockets keep the kernel default, whatever it is (reno on a bare kernel).
func pickCongestion(try func(string) error) (cc string, refused []string) {
	for _, name := range autoPreference {
		if err := try(name); err != nil {
			refused = append(refused, name)
			continue
		}
		return name, refused
	}
	return "", refused
}

// parseCongestionList splits the kernel's space-separated list.
func parseCongestionList(s string) []string { return strings.Fields(s) }

// errNoSockopts is what setting an option returns where the platform has none.
var errNoSockopts = errors.New("TCP congestion control can only be chosen on Linux")

// tcpConn returns the TCP connection under c (a TLS connection, or a
// connection as accepted); nil when there is none to tune.
func tcpConn(c net.Conn) *net.TCPConn {
	tc, _ := under[*net.TCPConn](c)
	return tc
}

// under finds the connection of type T in c or under it, following the
// NetConn methods of wrappers (*tls.Conn, earlyConn, prefixConn).
func under[T net.Conn](c net.Conn) (T, bool) {
	for {
		if t, ok := c.(T); ok {
			return t, true
		}
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			var zero T
			return zero, false
		}
		c = w.NetConn()
	}
}

// applyConn sets the options on an established connection (the relay's
// accepted ones; the edge sets them before connecting, see dialControl).
func (o sockopts) applyConn(c net.Conn) {
	tc := tcpConn(c)
	if tc == nil {
		return // a test's in-memory pipe or a wrapper: nothing to tune
	}
	rc, err := tc.SyscallConn()
	if err == nil {
		err = o.control(rc)
	}
	if err != nil {
		o.log.Warn("tunnel socket options not applied", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// socketInfo reads back what the kernel applied to c's TCP socket.
func socketInfo(c net.Conn) SocketInfo {
	tc := tcpConn(c)
	if tc == nil {
		return SocketInfo{}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return SocketInfo{}
	}
	return readSocketInfo(rc)
}

// socketRTT is the least round-trip time c's TCP socket has seen (its
// path's propagation delay); zero when unknown.
func socketRTT(c net.Conn) time.Duration {
	tc := tcpConn(c)
	if tc == nil {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	return readRTT(rc)
}

// logSocket records which congestion control a session got.
func logSocket(log *zap.Logger, remote net.Addr, si SocketInfo) {
	log.Info("tunnel socket", zap.Stringer("remote", remote), zap.String("tcp_congestion", si.Congestion),
		zap.Int("tcp_notsent_lowat", si.NotSentLowat))
}

// CongestionStats counts live WebSocket tunnel sessions by the congestion
// control their socket runs, for a metric. One may be shared by many
// Dialers and Listeners; it is safe for concurrent use.
type CongestionStats struct {
	mu   sync.Mutex
	live map[string]int
}

// Sessions returns the live sessions per algorithm ("unknown" where the
// kernel could not say). Algorithms seen before stay, at zero.
func (s *CongestionStats) Sessions() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.live))
	for k, v := range s.live {
		out[k] = v
	}
	return out
}

// add counts a session in (+1) or out (-1); nil counts nothing.
func (s *CongestionStats) add(cc string, d int) {
	if s == nil {
		return
	}
	if cc == "" {
		cc = "unknown"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = map[string]int{}
	}
	s.live[cc] += d
}
