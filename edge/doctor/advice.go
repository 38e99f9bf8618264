package doctor

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
)

// advise turns one relay's findings into what to change, most important
// first.
func advise(rr RelayReport, r Relay) []string {
	var out []string
	_, port, _ := net.SplitHostPort(r.QUICAddress)
	switch {
	case !rr.TCP.OK && !rr.UDP.OK:
		out = append(out, fmt.Sprintf("relay %s is unreachable over TCP and UDP: check that it runs and that its firewall opens port %s (TCP and UDP)", r.Address, port))
	case !rr.UDP.OK && r.DialQUIC != nil && rr.TLS.OK:
		out = append(out, fmt.Sprintf("UDP is blocked: the edge uses WebSocket over TCP (transport auto falls back); QUIC avoids head-of-line blocking and would cut p99 under loss: open UDP %s on the relay's firewall if the path allows it", port))
	case !rr.TCP.OK && rr.UDP.OK:
		out = append(out, "TCP is blocked but QUIC works: set transport: quic for this relay so the edge does not wait for WebSocket")
	}
	if rr.UDP.OK && r.DialQUICFEC != nil && !rr.FEC.OK {
		out = append(out, "QUIC works but not in FEC frames: something on the path drops UDP that does not look like QUIC; set tunnel.quic_fec: off (QUIC then keeps a loss-limited window on lossy links) or transport: ws")
	}
	if rr.TCP.OK && !rr.TLS.OK {
		out = append(out, tlsAdvice(rr.TLS.Detail))
	}
	if rr.RelayCertDaysLeft > 0 && rr.RelayCertDaysLeft < 30 {
		out = append(out, fmt.Sprintf("the relay's certificate expires in %.0f days: renew it on the relay (strait-relay init --force keeps the CA)", rr.RelayCertDaysLeft))
	}
	if rr.ClockSkew != nil && (*rr.ClockSkew > 30 || *rr.ClockSkew < -30) {
		out = append(out, fmt.Sprintf("clocks differ by %.0f s: enable NTP on both machines (certificate and token validity depend on it)", *rr.ClockSkew))
	}
	if rr.RTT != nil && rr.RTT.Lost > 0 {
		out = append(out, fmt.Sprintf("%d of %d probes got no answer within the timeout: the path stalls", rr.RTT.Lost, rr.RTT.Probes))
	}
	// One event is too few to tell loss from a stall of this machine.
	if rr.RTT != nil && rr.RTT.Loss >= 0.01 && rr.RTT.LossEvents >= 2 {
		if rr.Transport == "quic" {
			out = append(out, fmt.Sprintf("about %.1f%% packet loss: keep QUIC (no head-of-line blocking across requests); more sessions per relay (tunnel.sessions.min) spread the loss over more congestion windows", rr.RTT.Loss*100))
		} else {
			out = append(out, fmt.Sprintf("about %.1f%% packet loss on TCP: QUIC would avoid head-of-line blocking across requests; tcp_congestion bbr holds throughput under loss", rr.RTT.Loss*100))
		}
	}
	if rr.Transport == "ws" && rr.Congestion != "" && rr.Congestion != "bbr" {
		out = append(out, fmt.Sprintf("the tunnel's TCP uses %s: bbr copes with loss far better (modprobe tcp_bbr, then tcp_congestion: auto)", rr.Congestion))
	}
	return out
}

func tlsAdvice(detail string) string {
	switch {
	case strings.Contains(detail, "unknown authority"):
		return "the relay's certificate is not from the CA in tunnel.ca: this edge joined another relay, or the relay's CA was replaced; join again with a token from this relay"
	case strings.Contains(detail, "not valid for name"):
		return "the relay's certificate does not carry the name in the address: set server_name for the relay, or re-run strait-relay init with --addr that name"
	case strings.Contains(detail, "not yet valid"), strings.Contains(detail, "expired"):
		return "a certificate is outside its validity: check both clocks (NTP), then renew the expired certificate"
	case strings.Contains(detail, "revoked"), strings.Contains(detail, "remote refused our certificate"):
		return "the relay refused this edge's certificate (revoked, expired, or from another CA): see `strait-relay edges list` on the relay and join again with a new token"
	}
	return "the TLS handshake failed: " + detail
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func isTimeoutText(err error) bool {
	s := err.Error()
	return strings.Contains(s, "timeout") || strings.Contains(s, "deadline exceeded")
}
