package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// metricName finds metric names in PromQL.
var metricName = regexp.MustCompile(`\bstrait_[a-z0-9_]+`)

// TestMonitoringNamesRealMetrics: every metric the Grafana dashboard and
// the alert rules under scripts/monitoring name is declared by the edge or
// the relay, so a renamed metric cannot silently blank a panel or an alert.
func TestMonitoringNamesRealMetrics(t *testing.T) {
	s := newStack(t, stackOptions{})
	declared := map[string]bool{}
	for _, n := range append(s.edgeMetrics.Names(), s.relayMetrics.Names()...) {
		declared[n] = true
	}
	exprs := dashboardExprs(t, "../../scripts/monitoring/grafana-dashboard.json")
	if len(exprs) < 10 {
		t.Fatalf("dashboard has %d queries; parsed wrongly?", len(exprs))
	}
	alerts := alertExprs(t, "../../scripts/monitoring/alerts.yml")
	for _, want := range []string{"StraitHighErrorRate", "StraitSlowFirstByte", "StraitTunnelDown", "StraitQuotaNearlySpent"} {
		if _, ok := alerts[want]; !ok {
			t.Errorf("alert rules lack %s", want)
		}
	}
	for name, expr := range alerts {
		exprs = append(exprs, name+": "+expr)
	}
	seen := map[string]bool{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suf); ok && declared[b] {
					base = b
				}
			}
			seen[base] = true
			if !declared[base] {
				t.Errorf("%q names %s, which neither binary declares", e, m)
			}
		}
	}
	// The other direction, as a report: metrics no panel shows.
	var unshown []string
	for n := range declared {
		if strings.HasPrefix(n, "strait_") && !seen[n] {
			unshown = append(unshown, n)
		}
	}
	slices.Sort(unshown)
	t.Logf("%d Strait metrics on the dashboard/alerts; not shown: %v", len(seen), unshown)
}

func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}

func alertExprs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(false)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Errorf("%s: a rule without alert name or expr: %+v", path, r)
			}
			out[r.Alert] = r.Expr
		}
	}
	return out
}
