package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// cmdTable prints the runs of JSON-lines files, one table per kind of run.
func cmdTable(files []string, markdown bool) error {
	var all []Result
	for _, f := range files {
		rs, err := readResults(f)
		if err != nil {
			return err
		}
		all = append(all, rs...)
	}
	printTable(os.Stdout, all, markdown)
	return nil
}

func readResults(name string) ([]Result, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// labelOrder puts the usual scenario labels first, the rest alphabetically.
var labelOrder = []string{"scenario", "contender", "cc", "rtt", "loss", "burst"}

// printTable groups results by kind (and memory runs apart) and prints each
// group with the label columns its runs use.
func printTable(w io.Writer, rs []Result, markdown bool) {
	groups := map[string][]Result{}
	var order []string
	for _, r := range rs {
		g := r.Kind
		if len(r.RSS) > 0 {
			g = "memory"
		}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], r)
	}
	for _, g := range order {
		writeGroup(w, g, groups[g], markdown)
	}
}

func writeGroup(w io.Writer, kind string, rs []Result, markdown bool) {
	seen := map[string]bool{}
	for _, r := range rs {
		for k := range r.Label {
			seen[k] = true
		}
	}
	var labels []string
	for _, k := range labelOrder {
		if seen[k] {
			labels = append(labels, k)
			delete(seen, k)
		}
	}
	labels = append(labels, slices.Sorted(maps.Keys(seen))...)

	head := append(slices.Clone(labels), "mode", "conc")
	switch kind {
	case "stream":
		head = append(head, "ok/n", "TTFT p50", "p90", "p99", "total p50", "p99", "gap p50", "gap p99", "req/s", "errors", "load")
	case "unary":
		head = append(head, "rate", "ok/n", "lat p50", "p90", "p99", "req/s", "errors", "load")
	case "bulk":
		head = append(head, "ok/n", "time p50", "max", "MB/s", "errors", "load")
	case "memory":
		head = append(head, "ok/n", "TTFT p50", "p99", "RSS KiB (before→active)", "KiB/stream", "load")
	}
	var rows [][]string
	for _, r := range rs {
		row := make([]string, 0, len(head))
		for _, k := range labels {
			row = append(row, r.Label[k])
		}
		row = append(row, r.Mode, fmt.Sprint(r.Concurrency))
		okn := fmt.Sprintf("%d/%d", r.OK, r.Attempted)
		switch kind {
		case "stream":
			g := Dist{}
			if r.Gap != nil {
				g = *r.Gap
			}
			row = append(row, okn, f1(r.TTFT.P50), f1(r.TTFT.P90), f1(r.TTFT.P99), f1(r.Total.P50), f1(r.Total.P99),
				f1(g.P50), f1(g.P99), f1(r.RPS), errs(r.Errors), r.LoadAvg)
		case "unary":
			row = append(row, fmt.Sprint(r.Rate), okn, f2(r.Total.P50), f2(r.Total.P90), f2(r.Total.P99), f1(r.RPS), errs(r.Errors), r.LoadAvg)
		case "bulk":
			row = append(row, okn, f1(r.Total.P50), f1(r.Total.Max), fmt.Sprintf("%.2f", r.MBps), errs(r.Errors), r.LoadAvg)
		case "memory":
			var parts []string
			var per float64
			for _, name := range slices.Sorted(maps.Keys(r.RSS)) {
				m := r.RSS[name]
				parts = append(parts, fmt.Sprintf("%s %d→%d", name, m.Before, m.Active))
				per += m.PerStream
			}
			row = append(row, okn, f1(r.TTFT.P50), f1(r.TTFT.P99), strings.Join(parts, ", "), fmt.Sprintf("%.1f", per), r.LoadAvg)
		}
		rows = append(rows, row)
	}
	if markdown {
		fmt.Fprintf(w, "\n**%s** (times in ms)\n\n| %s |\n|%s\n", kind, strings.Join(head, " | "), strings.Repeat(" --- |", len(head)))
		for _, row := range rows {
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "# %s (ms)\n%s\n", kind, strings.Join(head, "\t"))
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func errs(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
