package doctor

import (
	"fmt"
	"io"
)

// WriteText prints the report in plain words.
func (rep Report) WriteText(w io.Writer) {
	if rep.EdgeCertDaysLeft != 0 {
		fmt.Fprintf(w, "edge tunnel certificate: valid for %.0f more days\n", rep.EdgeCertDaysLeft)
	}
	for _, r := range rep.Relays {
		fmt.Fprintf(w, "\nrelay %s\n", r.Address)
		for _, c := range []struct {
			name string
			c    Check
		}{{"dns", r.DNS}, {"tcp", r.TCP}, {"tls", r.TLS}, {"udp/quic", r.UDP}, {"quic/fec", r.FEC}, {"websocket", r.WebSocket}} {
			if c.c.Detail == "" {
				continue
			}
			mark := "ok  "
			if !c.c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(w, "  %s %-9s %s", mark, c.name, c.c.Detail)
			if c.c.Millis > 0 {
				fmt.Fprintf(w, " (%.1f ms)", c.c.Millis)
			}
			fmt.Fprintln(w)
		}
		if r.RTT != nil {
			fmt.Fprintf(w, "  tunnel over %s: round trip min %.1f / median %.1f / max %.1f ms, jitter %.1f ms, %d/%d probes answered\n",
				r.Transport, r.RTT.Min, r.RTT.Median, r.RTT.Max, r.RTT.Jitter, r.RTT.Probes-r.RTT.Lost, r.RTT.Probes)
		}
		if r.RTT != nil {
			fmt.Fprintf(w, "  packet loss estimated from the probes: about %.1f%% (%d loss events in %d probes)\n",
				r.RTT.Loss*100, r.RTT.LossEvents, r.RTT.Probes)
		}
		if r.QUICLoss != nil {
			fmt.Fprintf(w, "  QUIC packets this edge sent and lost: %.2f%%\n", *r.QUICLoss*100)
		}
		if r.Congestion != "" {
			fmt.Fprintf(w, "  congestion control: %s\n", r.Congestion)
		}
		if r.ClockSkew != nil {
			fmt.Fprintf(w, "  clock skew: relay %+.0f s from this machine (±1 s)\n", *r.ClockSkew)
		}
		if r.ThroughputMbps > 0 {
			fmt.Fprintf(w, "  short transfer over TCP: %.1f Mbit/s\n", r.ThroughputMbps)
		}
		for _, a := range r.Advice {
			fmt.Fprintf(w, "  => %s\n", a)
		}
	}
	if len(rep.Providers) > 0 {
		fmt.Fprintln(w, "\nfirst token through the edge (one tiny request each)")
	}
	for _, p := range rep.Providers {
		if p.OK {
			fmt.Fprintf(w, "  ok   %-9s %s: %.0f ms\n", p.Family, p.Model, p.FirstTokenMillis)
		} else {
			fmt.Fprintf(w, "  FAIL %-9s %s: %s\n", p.Family, p.Model, p.Detail)
		}
	}
	for _, a := range rep.Advice {
		fmt.Fprintf(w, "=> %s\n", a)
	}
	if rep.OK {
		fmt.Fprintln(w, "\nall good: nothing to change")
	}
}
