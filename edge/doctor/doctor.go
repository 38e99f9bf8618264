// Package doctor tells the operator what the border between the edge and
// its relays does: DNS and reachability of each relay over TCP and UDP (is
// QUIC blocked?), the TLS handshake and certificates with the exact reason
// on failure, tunnel round trip and jitter, packet loss estimated from
// probes, the congestion control in use, clock skew, and the throughput of
// a short transfer; then what to change. The transports come from the
// caller (only cmd names one), as dial functions.
package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

// Relay is one relay to examine.
type Relay struct {
	Address     string // host:port of the TLS (WebSocket) port, TCP
	QUICAddress string // host:port of the QUIC port, UDP
	// TLS is the edge's tunnel config for this relay: its certificate, the
	// pinned CA and the server name.
	TLS *tls.Config
	// DialWS and DialQUIC open a tunnel session over each transport; nil
	// skips that transport.
	DialWS, DialQUIC func(context.Context) (tunnel.Session, error)
	// DialQUICFEC opens a QUIC session in the edge's FEC frames
	// (tunnel.quic_fec); nil when FEC is off. It only checks that the
	// frames pass: the measurements use the plain session, since FEC would
	// hide the path's losses from the probes.
	DialQUICFEC func(context.Context) (tunnel.Session, error)
	// DownloadPath is the relay's diagnostic transfer endpoint.
	DownloadPath string
}

// Config configures Run.
type Config struct {
	Relays []Relay
	// EdgeCert is the edge's tunnel certificate, for its expiry.
	EdgeCert *tls.Certificate
	// Timeout bounds each step; zero means 3s.
	Timeout time.Duration
	// Probes is how many round trips to time; zero means 100, sent one
	// per Interval (zero: 20ms) without waiting for answers.
	Probes   int
	Interval time.Duration
	// TransferBytes is the size of the timed transfer; zero means 1 MiB.
	TransferBytes int
	// PathStats reads what a session's transport knows of its path; nil
	// reports nothing.
	PathStats func(tunnel.Session) PathStats
}

// PathStats is a transport's view of its path.
type PathStats struct {
	Congestion  string  // the congestion control
	Loss        float64 // share of packets lost
	LossKnown   bool
	PacketsSent uint64
}

// Check is one step's outcome.
type Check struct {
	OK     bool    `json:"ok"`
	Detail string  `json:"detail"`
	Millis float64 `json:"ms,omitempty"`
}

// RTT summarises the probes' round trips, in milliseconds.
type RTT struct {
	Probes int     `json:"probes"`
	Lost   int     `json:"lost"`
	Min    float64 `json:"min_ms"`
	Median float64 `json:"median_ms"`
	Max    float64 `json:"max_ms"`
	// Jitter is the mean difference between consecutive round trips
	// (RFC 3550's idea, without its smoothing).
	Jitter float64 `json:"jitter_ms"`
	// LossEvents are runs of probes delayed by a resend, plus lost probes;
	// Loss is the packet loss they suggest (see summarise).
	LossEvents int     `json:"loss_events"`
	Loss       float64 `json:"loss"`
}

// RelayReport is what Run found about one relay.
type RelayReport struct {
	Address string `json:"address"`
	DNS     Check  `json:"dns"`
	TCP     Check  `json:"tcp"`
	TLS     Check  `json:"tls"`
	UDP     Check  `json:"udp_quic"`
	// FEC is the QUIC handshake again in FEC frames, when the edge uses
	// them: a path that passes QUIC but drops other UDP would break them.
	FEC       Check `json:"quic_fec"`
	WebSocket Check `json:"websocket"`
	// RelayCertDaysLeft is the relay certificate's remaining validity.
	RelayCertDaysLeft float64 `json:"relay_cert_days_left,omitempty"`
	// Transport is the one the measurements below used (quic if it
	// works, else ws).
	Transport string `json:"transport,omitempty"`
	RTT       *RTT   `json:"rtt,omitempty"`
	// QUICLoss is the share of this end's QUIC packets declared lost,
	// when the session is QUIC (the relay's losses are not in it).
	QUICLoss   *float64 `json:"quic_loss,omitempty"`
	Congestion string   `json:"congestion,omitempty"`
	// ClockSkew is the relay's clock minus ours, in seconds (±1 s: HTTP
	// dates have whole seconds).
	ClockSkew      *float64 `json:"clock_skew_s,omitempty"`
	ThroughputMbps float64  `json:"throughput_mbit_s,omitempty"`
	Advice         []string `json:"advice"`
}

// Report is the whole diagnosis.
type Report struct {
	EdgeCertDaysLeft float64       `json:"edge_cert_days_left"`
	Relays           []RelayReport `json:"relays"`
	// Providers are the first-token checks, when asked for.
	Providers []ProviderCheck `json:"providers,omitempty"`
	Advice    []string        `json:"advice"`
	OK        bool            `json:"ok"`
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Probes <= 0 {
		c.Probes = 100
	}
	if c.Interval <= 0 {
		c.Interval = 20 * time.Millisecond
	}
	if c.TransferBytes <= 0 {
		c.TransferBytes = 1 << 20
	}
	if c.PathStats == nil {
		c.PathStats = func(tunnel.Session) PathStats { return PathStats{} }
	}
	return c
}

// Run examines every relay in turn.
func Run(ctx context.Context, cfg Config) Report {
	cfg = cfg.withDefaults()
	var rep Report
	if cfg.EdgeCert != nil && cfg.EdgeCert.Leaf != nil {
		rep.EdgeCertDaysLeft = daysLeft(cfg.EdgeCert.Leaf.NotAfter)
		switch {
		case rep.EdgeCertDaysLeft <= 0:
			rep.Advice = append(rep.Advice, "this edge's tunnel certificate has expired: relays refuse it; join again with a new token (`strait-relay edges token`)")
		case rep.EdgeCertDaysLeft < 30:
			rep.Advice = append(rep.Advice, fmt.Sprintf("this edge's tunnel certificate expires in %.0f days: renew it", rep.EdgeCertDaysLeft))
		}
	}
	rep.OK = len(rep.Advice) == 0
	for _, r := range cfg.Relays {
		rr := examine(ctx, cfg, r)
		rep.Relays = append(rep.Relays, rr)
		if !rr.TCP.OK && !rr.UDP.OK || !rr.TLS.OK && !rr.UDP.OK {
			rep.OK = false
		}
		if len(rr.Advice) > 0 {
			rep.OK = false
		}
	}
	return rep
}

func examine(ctx context.Context, cfg Config, r Relay) RelayReport {
	rr := RelayReport{Address: r.Address}
	host, _, _ := net.SplitHostPort(r.Address)
	rr.DNS = resolve(ctx, cfg.Timeout, host)
	rr.TCP, rr.TLS = dialTLS(ctx, cfg.Timeout, r, &rr)
	if rr.TLS.OK {
		skew, mbps, err := transfer(ctx, cfg, r)
		if err == nil {
			rr.ClockSkew, rr.ThroughputMbps = &skew, mbps
		}
	}
	var sess tunnel.Session
	if r.DialQUIC != nil {
		start := time.Now()
		s, err := dialWithin(ctx, cfg.Timeout, r.DialQUIC)
		if err == nil {
			sess, rr.Transport = s, "quic"
			rr.UDP = Check{OK: true, Detail: "QUIC handshake completed over UDP " + r.QUICAddress, Millis: ms(time.Since(start))}
		} else {
			rr.UDP = quicFailure(err, r.QUICAddress, cfg.Timeout)
		}
	} else {
		rr.UDP = Check{Detail: "QUIC not configured for this relay (transport: ws)"}
	}
	if rr.UDP.OK && r.DialQUICFEC != nil {
		start := time.Now()
		if s, err := dialWithin(ctx, cfg.Timeout, r.DialQUICFEC); err == nil {
			rr.FEC = Check{OK: true, Detail: "QUIC handshake completed in FEC frames", Millis: ms(time.Since(start))}
			s.Close()
		} else {
			rr.FEC = Check{Detail: "QUIC in FEC frames failed where plain QUIC works: " + err.Error()}
		}
	}
	if r.DialWS != nil && rr.TLS.OK {
		start := time.Now()
		s, err := dialWithin(ctx, cfg.Timeout, r.DialWS)
		if err == nil {
			rr.WebSocket = Check{OK: true, Detail: "WebSocket tunnel session up", Millis: ms(time.Since(start))}
			if sess == nil {
				sess, rr.Transport = s, "ws"
			} else {
				s.Close()
			}
		} else {
			rr.WebSocket = Check{Detail: "WebSocket tunnel refused: " + certs.DescribeVerifyError(err)}
		}
	}
	if sess != nil {
		rr.RTT = probe(ctx, cfg, sess)
		ps := cfg.PathStats(sess)
		rr.Congestion = ps.Congestion
		if ps.LossKnown {
			rr.QUICLoss = &ps.Loss
		}
		sess.Close()
	}
	rr.Advice = advise(rr, r)
	return rr
}

func resolve(ctx context.Context, timeout time.Duration, host string) Check {
	if ip := net.ParseIP(host); ip != nil {
		return Check{OK: true, Detail: "an IP address: no DNS needed"}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return Check{Detail: fmt.Sprintf("%s does not resolve: %v", host, err), Millis: ms(time.Since(start))}
	}
	return Check{OK: true, Detail: fmt.Sprintf("%s resolves to %v", host, addrs), Millis: ms(time.Since(start))}
}

// dialTLS connects over TCP and completes the tunnel's TLS handshake,
// reading the relay certificate's expiry.
func dialTLS(ctx context.Context, timeout time.Duration, r Relay, rr *RelayReport) (tcp, tlsc Check) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", r.Address)
	if err != nil {
		return Check{Detail: tcpFailure(err, r.Address, timeout), Millis: ms(time.Since(start))},
			Check{Detail: "not tried: no TCP connection"}
	}
	defer raw.Close()
	tcp = Check{OK: true, Detail: "TCP connect to " + r.Address, Millis: ms(time.Since(start))}
	tc := r.TLS.Clone()
	tc.NextProtos = []string{"http/1.1"}
	conn := tls.Client(raw, tc)
	start = time.Now()
	if err := conn.HandshakeContext(ctx); err != nil {
		return tcp, Check{Detail: "TLS handshake failed: " + certs.DescribeVerifyError(err), Millis: ms(time.Since(start))}
	}
	// TLS 1.3: the relay refuses our certificate after its Finished, so
	// only a round trip shows it. An HTTP request is that round trip.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, "HEAD / HTTP/1.1\r\nHost: relay\r\n\r\n"); err == nil {
		_, err = conn.Read(make([]byte, 1))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return tcp, Check{Detail: "TLS handshake failed: " + certs.DescribeVerifyError(err), Millis: ms(time.Since(start))}
		}
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	rr.RelayCertDaysLeft = daysLeft(leaf.NotAfter)
	return tcp, Check{OK: true, Millis: ms(time.Since(start)), Detail: fmt.Sprintf(
		"mutual TLS 1.3 with %q; relay certificate valid for %.0f more days, chains to the pinned CA", leaf.Subject.CommonName, rr.RelayCertDaysLeft)}
}

func tcpFailure(err error, addr string, timeout time.Duration) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer from TCP %s within %v: a firewall drops it, or the relay's host is down", addr, timeout)
	case isRefused(err):
		return fmt.Sprintf("TCP %s refused: nothing listens there (relay stopped, or wrong port)", addr)
	}
	return fmt.Sprintf("TCP %s: %v", addr, err)
}

func quicFailure(err error, addr string, timeout time.Duration) Check {
	reason := certs.DescribeVerifyError(err)
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || reason == err.Error() && isTimeoutText(err) {
		return Check{Detail: fmt.Sprintf("no QUIC answer over UDP %s within %v: UDP is blocked on the way (or the relay has listen_quic: off)", addr, timeout)}
	}
	return Check{Detail: "QUIC refused: " + reason}
}

func dialWithin(ctx context.Context, timeout time.Duration, dial func(context.Context) (tunnel.Session, error)) (tunnel.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return dial(ctx)
}

// probe sends Probes pings through the relay process itself on a control
// stream (proto.FramePing/FramePong, as the edge's pool probes), one per
// Interval without waiting for answers, and times each answer. A probe
// unanswered within Timeout of the last one counts as lost.
func probe(ctx context.Context, cfg Config, s tunnel.Session) *RTT {
	out := &RTT{Probes: cfg.Probes}
	octx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	st, err := s.OpenStream(octx)
	cancel()
	if err != nil {
		out.Lost = cfg.Probes
		return out
	}
	sent := make([]time.Time, cfg.Probes+1)
	got := make([]time.Duration, cfg.Probes+1)
	answered := make(chan struct{})
	var mu sync.Mutex
	go func() { // reads Pongs until the stream ends (Reset below)
		defer close(answered)
		r := proto.NewReader(st)
		defer r.Release()
		n := 0
		for n < cfg.Probes {
			typ, p, err := r.Next()
			if err != nil {
				return
			}
			seq, err := proto.ParseSeq(p)
			if typ != proto.FramePong || err != nil || seq < 1 || seq > uint64(cfg.Probes) {
				continue
			}
			mu.Lock()
			got[seq] = time.Since(sent[seq])
			mu.Unlock()
			n++
		}
	}()
	w := proto.NewWriter(st)
	t := time.NewTicker(cfg.Interval)
	for seq := 1; seq <= cfg.Probes && ctx.Err() == nil; seq++ {
		mu.Lock()
		sent[seq] = time.Now()
		mu.Unlock()
		if w.WritePing(uint64(seq)) != nil {
			break
		}
		if seq < cfg.Probes {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	t.Stop()
	select {
	case <-answered:
	case <-time.After(cfg.Timeout):
	case <-ctx.Done():
	}
	_ = st.Reset()
	<-answered
	var rtts []float64
	for _, d := range got[1:] {
		if d == 0 {
			out.Lost++
			continue
		}
		rtts = append(rtts, ms(d))
	}
	return summarise(out, rtts)
}

// summarise fills in the round trip statistics and estimates loss from
// the probes. A lost ping or pong is resent after at least one more round
// trip, so its probe, and those queued behind it on the stream, arrive
// late (by at least the base round trip, and 50 ms): each run of late
// probes counts as one loss event, among two
// packets per probe (ping and pong). Runs that merge hide losses, so the
// estimate errs low.
func summarise(out *RTT, rtts []float64) *RTT {
	if len(rtts) == 0 {
		return out
	}
	var jit float64
	for i := 1; i < len(rtts); i++ {
		jit += math.Abs(rtts[i] - rtts[i-1])
	}
	if len(rtts) > 1 {
		out.Jitter = round(jit / float64(len(rtts)-1))
	}
	sorted := slices.Clone(rtts)
	slices.Sort(sorted)
	out.Min, out.Median, out.Max = round(sorted[0]), round(sorted[len(sorted)/2]), round(sorted[len(sorted)-1])
	// A resend costs at least another round trip; 50 ms more keeps a busy
	// machine's scheduling stalls from passing for loss on short paths.
	base := sorted[len(sorted)/10]
	late := base + max(base, 50)
	events, inRun := 0, false
	for _, r := range rtts {
		if r > late && !inRun {
			events++
		}
		inRun = r > late
	}
	out.LossEvents = events + out.Lost
	out.Loss = round(float64(out.LossEvents) / float64(2*out.Probes))
	return out
}

// transfer fetches TransferBytes from the relay's diagnostic endpoint over
// the tunnel's TLS port: its duration gives the throughput, its Date header
// the relay's clock.
func transfer(ctx context.Context, cfg Config, r Relay) (skew, mbps float64, err error) {
	tc := r.TLS.Clone()
	tc.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 4 * cfg.Timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		"https://"+r.Address+r.DownloadPath+"?bytes="+strconv.Itoa(cfg.TransferBytes), nil)
	if err != nil {
		return 0, 0, err
	}
	sent := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	first := time.Now()
	if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// The relay stamped the date somewhere between our request and its
		// first byte; whole seconds, so half a second of rounding.
		mid := sent.Add(first.Sub(sent) / 2)
		skew = round(date.Sub(mid.Truncate(time.Second)).Seconds())
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return skew, 0, fmt.Errorf("transfer: %s %v", resp.Status, err)
	}
	return skew, round(float64(n) * 8 / 1e6 / time.Since(first).Seconds()), nil
}

func daysLeft(t time.Time) float64 { return math.Floor(time.Until(t).Hours()/24*10) / 10 }

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }

func round(f float64) float64 { return math.Round(f*100) / 100 }
