package edge

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/edge/usagedb"
)

// TestFinishAccounts: every request, served or refused, leaves one log
// line, one audit record and its metrics, with the key's name and never
// the key; a served one also its reported usage (tokens, cost) in the
// metrics and the usage store, a refused one its reason and no usage.
func TestFinishAccounts(t *testing.T) {
	dir := t.TempDir()
	db, err := usagedb.Open(filepath.Join(dir, usagedb.FileName), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	auditPath := filepath.Join(dir, "audit.jsonl")
	al := audit.Open(audit.Config{Path: auditPath})
	prices := quota.Prices{{Pattern: "gpt-4o-mini", Price: quota.Price{Input: 1, Output: 2}}} // USD per million tokens
	r := newEdgeRig(t, Config{Usage: db, Audit: al, Policy: Policy{Prices: prices}}, entry("app", auth.Client{}))

	served := r.post(chatPath, "key-of-app", jsonType, chatBody)
	refused := r.post(chatPath, "key-of-nobody", jsonType, chatBody)
	if served.status != http.StatusOK || refused.status != http.StatusUnauthorized {
		t.Fatalf("statuses %d and %d, want 200 and 401", served.status, refused.status)
	}
	if err := al.Close(); err != nil { // flushes the records
		t.Fatal(err)
	}

	t.Run("log lines", func(t *testing.T) {
		lines := r.logs.FilterFieldKey("request_id").AllUntimed()
		if len(lines) != 2 {
			t.Fatalf("%d request log lines, want 2", len(lines))
		}
		want := []struct {
			msg, key, reason string
			status, in, out  int64
		}{{"request", "app", "", 200, 11, 7}, {"request rejected", "", "invalid_key", 401, 0, 0}}
		for i, l := range lines {
			f := l.ContextMap()
			w := want[i]
			if l.Message != w.msg || f["key"] != w.key || f["status"] != w.status || f["tokens_in"] != w.in || f["tokens_out"] != w.out {
				t.Errorf("line %d: %q %v; want %q key %q status %d tokens %d/%d", i, l.Message, f, w.msg, w.key, w.status, w.in, w.out)
			}
			if w.reason != "" && f["reason"] != w.reason {
				t.Errorf("line %d: reason %v, want %s", i, f["reason"], w.reason)
			}
			for k, v := range f {
				if s, ok := v.(string); ok && strings.Contains(s, "key-of-") {
					t.Errorf("line %d: field %s holds a client key", i, k)
				}
			}
		}
	})

	t.Run("metrics", func(t *testing.T) {
		for _, m := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"strait_requests_total", map[string]string{"family": "openai", "status": "200", "key": "app"}, 1},
			{"strait_requests_total", map[string]string{"family": "openai", "status": "401", "key": ""}, 1},
			{"strait_tokens_total", map[string]string{"key": "app", "kind": "input"}, 11},
			{"strait_tokens_total", map[string]string{"key": "app", "kind": "output"}, 7},
			{"strait_cost_usd_total", map[string]string{"key": "app"}, (11*1 + 7*2) / 1e6},
			{"strait_rejections_total", map[string]string{"reason": "invalid_key"}, 1},
			{"strait_bytes_total", map[string]string{"direction": "in"}, float64(len(chatBody))}, // the refused body is never read
			{"strait_bytes_total", map[string]string{"direction": "out"}, float64(len(stubAnswer) + len(refused.body))},
		} {
			if got := r.counter(m.name, m.labels); got != m.want {
				t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
			}
		}
	})

	t.Run("audit", func(t *testing.T) {
		f, err := os.Open(auditPath)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var got []audit.Entry
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "key-of-") {
				t.Error("an audit record holds a client key")
			}
			var e audit.Entry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			got = append(got, e)
		}
		if len(got) != 2 {
			t.Fatalf("%d audit records, want 2", len(got))
		}
		if e := got[0]; e.Key != "app" || e.Status != 200 || e.UsageSource != "reported" || e.Model != "gpt-4o-mini" || e.Cost <= 0 {
			t.Errorf("served request's record: %+v", e)
		}
		if e := got[1]; e.Key != "" || e.Status != 401 || e.Reason != "invalid_key" || e.UsageSource != "" || e.Cost != 0 {
			t.Errorf("refused request's record: %+v", e)
		}
	})

	t.Run("usage store", func(t *testing.T) {
		rows, err := db.Query(usagedb.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].Client != "app" || rows[0].Model != "gpt-4o-mini" || rows[0].Requests != 1 || rows[0].Estimated != 0 {
			t.Fatalf("usage rows %+v; want one reported request of app on gpt-4o-mini", rows)
		}
	})
}

// TestUsageOfUnansweredRequest: a request the relay sent upstream whose
// client went away before any answer (a whole answer comes only at its
// end) is charged its estimated input, as a stream cut before its first
// event is: the provider has its prompt. Charged nothing, a key could
// spend the shared provider account past its quota and its tokens per
// minute by leaving each request just before its answer. A request that
// never reached the provider costs nothing.
func TestUsageOfUnansweredRequest(t *testing.T) {
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 4000) + `"}]}`)
	in := usage.EstimateTokens(len(body))
	for _, tc := range []struct {
		name                  string
		forwarded, dispatched bool
		want                  usage.Usage
		source                string
	}{
		{"refused at the edge", false, false, usage.Usage{}, ""},
		{"never reached the provider", true, false, usage.Usage{}, ""},
		{"client gone after dispatch", true, true, usage.Usage{Input: in, Estimated: true}, "estimated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{body: body, forwarded: tc.forwarded, res: forward.Result{Dispatched: tc.dispatched}}
			c.tap = &tap{c: c}
			if u, source := c.usage(); u != tc.want || source != tc.source {
				t.Errorf("usage %+v (%q), want %+v (%q)", u, source, tc.want, tc.source)
			}
		})
	}
}

// TestAuditRequestBodyCapped: with bodies recorded, an audit record holds
// at most the first maxAuditBody bytes of the request body, as of the
// response body, and a request whose answer streams keeps no more than
// that of its prompt once the relay has it. Whole, a key's 32 MiB bodies
// would each be held for their answers' life and written to the audit log
// in full, at its rate limit.
func TestAuditRequestBodyCapped(t *testing.T) {
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	al := audit.Open(audit.Config{Path: auditPath, Bodies: true})
	r := newEdgeRig(t, Config{Audit: al}, entry("app", auth.Client{}))
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 4*maxAuditBody) + `"}]}`

	if got := r.post(chatPath, "key-of-app", jsonType, body); got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	b := closedAuditFile(t, al, auditPath)
	e := auditEntry(t, b)
	if len(e.RequestBody) != maxAuditBody || !strings.HasPrefix(body, e.RequestBody) || e.BytesIn != int64(len(body)) {
		t.Errorf("audit record: request body of %d bytes (bytes_in %d); want the first %d of %d", len(e.RequestBody), e.BytesIn, maxAuditBody, len(body))
	}

	c := &call{e: r.e, body: []byte(body)}
	c.dropBody()
	if cap(c.body) > maxAuditBody || c.bodyBytes() != len(body) {
		t.Errorf("after the relay has it, the call holds %d bytes of its %d-byte body (size %d); want at most %d", cap(c.body), len(body), c.bodyBytes(), maxAuditBody)
	}
}

// closedAuditFile closes al, which flushes its records, and returns the
// audit file at path.
func closedAuditFile(t *testing.T, al *audit.Log, path string) []byte {
	t.Helper()
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// auditEntry parses one audit record.
func auditEntry(t *testing.T, line []byte) audit.Entry {
	t.Helper()
	var e audit.Entry
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	return e
}
