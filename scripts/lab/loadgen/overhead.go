package main

import (
	"fmt"
	"io"
	"os"
	"slices"
)

// cmdOverhead prints the loopback runs as one Markdown table: per contender,
// the latency it adds over calling the fake provider directly ("direct") at
// each offered rate, its highest closed-loop rate, and for streams the added
// time to first token and added gap between events.
func cmdOverhead(args []string) error {
	var rs []Result
	for _, f := range args {
		r, err := readResults(f)
		if err != nil {
			return err
		}
		rs = append(rs, r...)
	}
	overhead(os.Stdout, rs)
	return nil
}

func overhead(w io.Writer, rs []Result) {
	type key struct {
		contender, kind string
		rate            float64
		max             bool
	}
	runs := map[key]Result{}
	var contenders []string
	var rates []float64
	for _, r := range rs {
		if r.Label["scenario"] != "loopback" {
			continue
		}
		k := key{r.Label["contender"], r.Kind, r.Rate, r.Label["max"] == "1"}
		runs[k] = r
		if !slices.Contains(contenders, k.contender) {
			contenders = append(contenders, k.contender)
		}
		if r.Kind == "unary" && r.Rate > 0 && !slices.Contains(rates, r.Rate) {
			rates = append(rates, r.Rate)
		}
	}
	slices.Sort(rates)
	fmt.Fprint(w, "| contender |")
	for _, rate := range rates {
		fmt.Fprintf(w, " %g req/s: p50 / p99 (added) |", rate)
	}
	fmt.Fprint(w, " max req/s (64 conns) | stream TTFT p50 / p99 (added) | stream gap p50 / p99 (added) |\n|")
	for range len(rates) + 4 {
		fmt.Fprint(w, " --- |")
	}
	fmt.Fprintln(w)
	for _, c := range contenders {
		fmt.Fprintf(w, "| %s |", c)
		for _, rate := range rates {
			r, base := runs[key{c, "unary", rate, false}], runs[key{"direct", "unary", rate, false}]
			fmt.Fprintf(w, " %s |", added(r.Total, base.Total, c, r))
		}
		fmt.Fprintf(w, " %.0f |", runs[key{c, "unary", 0, true}].RPS)
		s, base := runs[key{c, "stream", 0, false}], runs[key{"direct", "stream", 0, false}]
		fmt.Fprintf(w, " %s |", added(s.TTFT, base.TTFT, c, s))
		var g, bg Dist
		if s.Gap != nil && base.Gap != nil {
			g, bg = *s.Gap, *base.Gap
		}
		fmt.Fprintf(w, " %s |\n", added(g, bg, c, s))
	}
}

// added formats d and, except for the baseline itself, d minus base.
func added(d, base Dist, contender string, r Result) string {
	s := fmt.Sprintf("%.2f / %.2f", d.P50, d.P99)
	if contender != "direct" {
		s += fmt.Sprintf(" (%+.2f / %+.2f)", d.P50-base.P50, d.P99-base.P99)
	}
	if r.OK < r.Attempted {
		s += fmt.Sprintf(" [%d/%d ok]", r.OK, r.Attempted)
	}
	return s
}
