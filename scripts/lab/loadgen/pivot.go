package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// cmdPivot prints one Markdown table of link runs: a row per link (RTT, loss,
// burst, congestion control), a column per contender, each cell one metric's
// p50 / p99 for the chosen client mode and concurrency.
func cmdPivot(args []string) error {
	fs := flag.NewFlagSet("pivot", flag.ExitOnError)
	mode := fs.String("mode", "fresh", "client mode")
	conc := fs.Int("conc", 256, "concurrency")
	kind := fs.String("kind", "stream", "stream or bulk")
	metric := fs.String("metric", "ttft", "ttft, total or mbps")
	_ = fs.Parse(args)
	var rs []Result
	for _, f := range fs.Args() {
		r, err := readResults(f)
		if err != nil {
			return err
		}
		rs = append(rs, r...)
	}
	pivot(os.Stdout, rs, *mode, *kind, *metric, *conc)
	return nil
}

func pivot(w io.Writer, rs []Result, mode, kind, metric string, conc int) {
	var rows, cols []string
	cells := map[[2]string]string{}
	for _, r := range rs {
		if r.Label["scenario"] != "link" || r.Mode != mode || r.Kind != kind || r.Concurrency != conc {
			continue
		}
		cc := r.Label["cc"]
		if cc == "quic" {
			cc = "" // QUIC runs once per link; it belongs to every cc row
		}
		link := fmt.Sprintf("%s ms, %s%% loss", r.Label["rtt"], pct(r.Label["loss"]))
		if b := r.Label["burst"]; b != "" && b != "0" {
			link += " (bursts of " + b + ")"
		}
		c := r.Label["contender"]
		if !slices.Contains(cols, c) {
			cols = append(cols, c)
		}
		for _, k := range ccRows(cc, rs) {
			row := link + " | " + k
			if !slices.Contains(rows, row) {
				rows = append(rows, row)
			}
			cells[[2]string{row, c}] = cell(r, metric)
		}
	}
	fmt.Fprintf(w, "| RTT, loss | TCP cc | %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat(" --- |", len(cols)+2))
	for _, row := range rows {
		var vs []string
		for _, c := range cols {
			v := cells[[2]string{row, c}]
			if v == "" {
				v = "–"
			}
			vs = append(vs, v)
		}
		fmt.Fprintf(w, "| %s | %s |\n", row, strings.Join(vs, " | "))
	}
}

// ccRows lists the congestion-control rows a run belongs to: its own, or
// for QUIC (cc "") every TCP cc that appears in rs.
func ccRows(cc string, rs []Result) []string {
	if cc != "" {
		return []string{cc}
	}
	var out []string
	for _, r := range rs {
		if c := r.Label["cc"]; c != "" && c != "quic" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

func cell(r Result, metric string) string {
	var s string
	switch metric {
	case "total":
		s = fmt.Sprintf("%.0f / %.0f", r.Total.P50, r.Total.P99)
	case "mbps":
		s = fmt.Sprintf("%.2f MB/s", r.MBps)
	default:
		s = fmt.Sprintf("%.0f / %.0f", r.TTFT.P50, r.TTFT.P99)
	}
	if r.OK < r.Attempted {
		s += fmt.Sprintf(" (%d/%d ok)", r.OK, r.Attempted)
	}
	return s
}

func pct(loss string) string {
	var f float64
	if _, err := fmt.Sscan(loss, &f); err != nil {
		return loss
	}
	return fmt.Sprintf("%g", f*100)
}
