// Package internal_test holds the dependency test of STYLE.md §c.2: it keeps
// the import arrows of ARCHITECTURE.md pointing one way.
package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/strait/strait"

// nonStd stands for "any package outside the standard library".
const nonStd = "(non-stdlib)"

// depRule forbids packages matching pkgs but not except (patterns relative
// to the module; a trailing "/..." matches a subtree, "..." the whole
// module) from depending, even transitively, on any package matching a key
// of bad (absolute patterns, or nonStd) other than those matching allow
// (absolute patterns; the allowed package's own dependencies are still
// checked, by its own rule).
type depRule struct {
	pkgs, except []string
	bad          map[string]string // pattern (absolute, or nonStd) → reason
	allow        []string
}

var transports = map[string]string{
	"github.com/gorilla/websocket":                         "transports are chosen in cmd only; reach them through tunnel.Dialer/Listener",
	"github.com/strait/strait/tunnel/wstun/internal/yamux": "transports are chosen in cmd only; reach them through tunnel.Dialer/Listener",
	"github.com/quic-go/quic-go/...":                       "transports are chosen in cmd only; reach them through tunnel.Dialer/Listener",
	mod + "/tunnel/wstun":                                  "a concrete transport; only cmd names one",
	mod + "/tunnel/quictun":                                "a concrete transport; only cmd names one",
}

var depRules = []depRule{
	{pkgs: []string{"proto"}, bad: map[string]string{nonStd: "the wire codec is a stdlib-only leaf both sides share"}},
	{pkgs: []string{"certs"}, bad: map[string]string{nonStd: "certificate handling is a stdlib-only leaf (crypto/* only)"}},
	{pkgs: []string{"tunnel"}, bad: map[string]string{nonStd: "the transport contract names no implementation"}},
	{pkgs: []string{"edge/apierr"}, bad: map[string]string{nonStd: "error rendering is a stdlib-only leaf, with the shared API vocabulary"},
		allow: []string{mod + "/proto/llmapi"}},
	{pkgs: []string{"proto/llmapi"}, bad: map[string]string{nonStd: "the API vocabulary (families, model, SSE framing, usage, credentials, " +
		"error shapes) is a stdlib-only leaf that edge and relay share; it imports nothing of ours"}},
	{pkgs: []string{"relay/convert"}, bad: map[string]string{
		mod + "/relay/upstream": "conversion is pure: no network", mod + "/tunnel/...": "conversion is pure: no network",
		mod + "/proto": "conversion knows nothing of the tunnel", "go.uber.org/zap": "conversion returns errors, it does not log"}},
	{pkgs: []string{"edge/..."}, bad: map[string]string{mod + "/relay/...": "edge and relay share only proto and tunnel"}},
	{pkgs: []string{"relay/..."}, bad: map[string]string{mod + "/edge/...": "edge and relay share only proto and tunnel"}},
	{pkgs: []string{"edge/...", "relay/...", "tunnel/pool"}, bad: transports},
	{pkgs: []string{"tunnel/wstun"}, bad: map[string]string{"github.com/quic-go/quic-go/...": "one transport per package",
		mod + "/tunnel/quictun": "one transport per package"}},
	{pkgs: []string{"tunnel/quictun"}, bad: map[string]string{"github.com/strait/strait/tunnel/wstun/internal/yamux": "one transport per package",
		"github.com/gorilla/websocket": "one transport per package", mod + "/tunnel/wstun": "one transport per package"}},
	{pkgs: []string{"tunnel/autodial"}, bad: transports},
	{pkgs: []string{"edge/ingress", "edge/auth", "relay/upstream"}, bad: map[string]string{mod + "/tunnel/...": "request policy knows nothing of the tunnel"}},
	{pkgs: []string{"cmd/internal/cli"}, bad: map[string]string{
		mod + "/edge/...": "cli returns plain values; the mains wire them", mod + "/relay/...": "cli returns plain values; the mains wire them",
		mod + "/tunnel/...": "cli returns plain values; the mains wire them"}},
	// scripts/ holds test, quick-start and lab equipment (the fake provider
	// among it): the product packages never depend on it; only cmd (the
	// fake-provider command) and tests may. tunnel/tunneltest is test
	// equipment itself (its SSE fixtures come from the fake provider), kept
	// out of every product package by the "testing" rule below.
	{pkgs: []string{"edge/...", "relay/...", "tunnel/...", "proto/...", "certs/..."}, except: []string{"tunnel/tunneltest"},
		bad: map[string]string{mod + "/scripts/...": "test and lab equipment stays out of the product tree"}},
	{pkgs: []string{"..."}, except: []string{"cmd/..."}, bad: map[string]string{
		"github.com/urfave/cli/v2": "CLI stays in cmd", mod + "/cmd/...": "nothing imports cmd"}},
	// Exempt: test-only packages (cmd/e2e, tunnel/tunneltest, and
	// scripts/redistest, which edge and relay tests share; this rule keeps
	// them out of every other package), and scripts/demo, a lab tool
	// outside both binaries that drives the official SDKs, one of which
	// (google.golang.org/genai) imports "testing".
	{pkgs: []string{"..."}, except: []string{"cmd/e2e", "tunnel/tunneltest", "scripts/..."}, bad: map[string]string{
		"testing": "no test code in binaries", "net/http/httptest": "no test code in binaries"}},
}

// TestDependencies proves the layering of ARCHITECTURE.md holds: for every
// package of the module, no forbidden package is among its transitive
// dependencies. Each failure names the import chain and the rule's reason.
func TestDependencies(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not available:", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{join .Imports \" \"}}", mod+"/...").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	std := map[string]bool{}
	imports := map[string][]string{}
	var own []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		std[f[0]], imports[f[0]] = f[1] == "true", slices.DeleteFunc(f[2:], func(s string) bool { return s == "C" }) // cgo pseudo-package
		if match(mod+"/...", f[0]) {
			own = append(own, f[0])
		}
	}
	// Positive control: the graph is parsed, and the binaries do see a
	// transport, so an empty result below means "clean", not "blind".
	if chain := find(mod+"/cmd/strait-relay", imports, func(p string) bool { return p == "github.com/gorilla/websocket" }); chain == nil {
		t.Fatalf("cmd/strait-relay does not depend on gorilla/websocket; is the go list output parsed? (%d packages)", len(imports))
	}

	for _, r := range depRules {
		matched := 0
		for _, p := range own {
			if !matchAny(r.pkgs, p) || matchAny(r.except, p) {
				continue
			}
			matched++
			for pat, reason := range r.bad {
				chain := find(p, imports, func(d string) bool {
					if d == p || slices.ContainsFunc(r.allow, func(a string) bool { return match(a, d) }) {
						return false
					}
					if pat == nonStd {
						return !std[d]
					}
					return match(pat, d)
				})
				if chain != nil {
					t.Errorf("%s must not import %s (%s): %s", p, pat, reason, strings.Join(chain, " → "))
				}
			}
		}
		if matched == 0 {
			t.Errorf("rule for %v matches no package; update it", r.pkgs)
		}
	}
}

// match reports whether pkg matches pattern; a trailing /... matches a
// subtree.
func match(pattern, pkg string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return pkg == base || strings.HasPrefix(pkg, base+"/")
	}
	return pkg == pattern
}

// matchAny matches pkg against patterns relative to the module ("..." is
// the whole module).
func matchAny(patterns []string, pkg string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(mod+"/"+p, pkg) })
}

// find returns the shortest import chain from root to a package satisfying
// bad, or nil.
func find(root string, imports map[string][]string, bad func(string) bool) []string {
	parent := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if bad(p) {
			var chain []string
			for ; p != ""; p = parent[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, d := range imports[p] {
			if _, seen := parent[d]; !seen {
				parent[d] = p
				queue = append(queue, d)
			}
		}
	}
	return nil
}
