package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"google.golang.org/genai"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/usagedb"
)

// withKey adds a client key with limits to the edge's config.
func withKey(name, key string, lim auth.Limits, models ...string) func(*edgecmd.File) {
	addSecret(key, "client key "+name)
	return func(f *edgecmd.File) {
		f.ClientKeys = append(f.ClientKeys, edgecmd.ClientKey{Name: name, Key: key, Limits: lim, Models: models})
	}
}

func edits(fs ...func(*edgecmd.File)) func(*edgecmd.File) {
	return func(f *edgecmd.File) {
		for _, e := range fs {
			e(f)
		}
	}
}

// TestRateLimitsInEachFamilyFormat: past its requests per minute a key gets
// 429 in its SDK's own error type, with Retry-After and x-ratelimit-*
// headers; requests without a valid key are limited per source IP.
func TestRateLimitsInEachFamilyFormat(t *testing.T) {
	const key = "strait-limited-key-0123456789"
	s := newStack(t, stackOptions{edgeEdit: edits(withKey("limited", key, auth.Limits{RPM: 2}),
		func(f *edgecmd.File) { f.Limits.UnauthenticatedRPM = 3 })})
	ctx := testCtx(t, 20*time.Second)
	oa := s.openai(option.WithAPIKey(key))
	for i := range 2 {
		if _, err := oa.Chat.Completions.New(ctx, chatParams); err != nil {
			t.Fatalf("request %d within the limit: %v", i, err)
		}
	}
	var resp *http.Response
	_, err := oa.Chat.Completions.New(ctx, chatParams, option.WithResponseInto(&resp))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 429 || oe.Code != "rate_limit_exceeded" || !strings.Contains(oe.Message, "requests per minute") {
		t.Fatalf("openai: got %v, want a 429 rate_limit_exceeded", err)
	}
	h := oe.Response.Header
	if h.Get("Retry-After") == "" || h.Get("X-Ratelimit-Limit-Requests") != "2" || h.Get("X-Ratelimit-Remaining-Requests") != "0" ||
		h.Get("X-Ratelimit-Reset-Requests") == "" || h.Get("X-Request-Id") == "" {
		t.Errorf("openai 429 headers: %v", h)
	}

	ac := anthropic.NewClient(anthropicOpts(s, key)...)
	_, err = ac.Messages.New(ctx, messageParams)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 429 || !strings.Contains(ae.RawJSON(), `"rate_limit_error"`) {
		t.Fatalf("anthropic: got %v, want a 429 rate_limit_error", err)
	}
	if h := ae.Response.Header; h.Get("Anthropic-Ratelimit-Requests-Remaining") != "0" || h.Get("Retry-After") == "" {
		t.Errorf("anthropic 429 headers: %v", h)
	}

	gc, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: key, Backend: genai.BackendGeminiAPI,
		HTTPClient: s.client, HTTPOptions: genai.HTTPOptions{BaseURL: s.edgeURL}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = gc.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil)
	var ge genai.APIError
	if !errors.As(err, &ge) || ge.Code != 429 || ge.Status != "RESOURCE_EXHAUSTED" {
		t.Fatalf("gemini: got %v, want 429 RESOURCE_EXHAUSTED", err)
	}

	// The default key is not affected by another key's limit.
	if _, err := openaiChat(ctx, t, s); err != nil {
		t.Fatalf("another key was limited too: %v", err)
	}

	// Without a valid key: 401 three times, then 429 for this address.
	bad := s.openai(option.WithAPIKey("strait-wrong-key-0123456789"))
	for i := range 4 {
		_, err := bad.Chat.Completions.New(ctx, chatParams)
		want := map[bool]int{true: 429, false: 401}[i == 3]
		if !errors.As(err, &oe) || oe.StatusCode != want {
			t.Fatalf("unauthenticated request %d: got %v, want %d", i, err, want)
		}
	}
	_, body := adminGet(t, s.edgeAdmin, "/metrics")
	for _, want := range []string{`strait_rejections_total{reason="rate_limit_requests"} 3`, `strait_rejections_total{reason="ip_rate_limit"} 1`,
		`strait_rejections_total{reason="invalid_key"} 3`} {
		if !strings.Contains(body, want) {
			t.Errorf("edge metrics lack %s", want)
		}
	}
}

// usageReport reads the edge's admin usage endpoint.
func usageReport(t *testing.T, s *stack, query string) edge.Report {
	t.Helper()
	code, body := adminGet(t, s.edgeAdmin, "/usage?"+query)
	if code != http.StatusOK {
		t.Fatalf("/usage: %d %s", code, body)
	}
	var rep edge.Report
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestUsageFromStreams: the edge reads usage from the streams of all three
// families as reported by the provider; an OpenAI client that did not ask
// for the usage chunk does not get it, though the edge asked the provider
// for it. Every response carries X-Request-Id and a Server-Timing split.
func TestUsageFromStreams(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := testCtx(t, 20*time.Second)
	var resp *http.Response
	stream := s.openai(option.WithResponseInto(&resp)).Chat.Completions.NewStreaming(ctx, chatParams)
	var chunks int
	for stream.Next() {
		chunks++
		if raw := stream.Current().RawJSON(); strings.Contains(raw, `"usage"`) {
			t.Errorf("client saw usage it did not ask for: %s", raw)
		}
	}
	if err := stream.Err(); err != nil || chunks == 0 {
		t.Fatalf("openai stream: %d chunks, %v", chunks, err)
	}
	stream.Close()
	if id := resp.Header.Get("X-Request-Id"); !strings.HasPrefix(id, "req_") {
		t.Errorf("X-Request-Id %q", id)
	}
	st := resp.Header.Get("Server-Timing")
	for _, part := range []string{"edge;dur=", "tunnel;dur=", "relay;dur=", "upstream;dur="} {
		if !strings.Contains(st, part) {
			t.Errorf("Server-Timing %q lacks %s", st, part)
		}
	}
	if resp.Header.Get("Strait-Relay-Timing") != "" {
		t.Error("the relay's internal timing header reached the client")
	}
	if _, err := anthropicMessagesStream(ctx, t, s); err != nil {
		t.Fatal(err)
	}
	if _, err := geminiStream(ctx, t, s); err != nil {
		t.Fatal(err)
	}
	var sawForced bool
	for _, r := range s.fake.Requests() {
		if r.Family == "openai" && bytes.Contains(r.Body, []byte(`"include_usage":true`)) {
			sawForced = true
		}
	}
	if !sawForced {
		t.Error("the edge did not ask the provider for the usage chunk")
	}
	// A stream's usage is recorded once its last bytes are out, so the
	// client may read the end before the edge has written the row.
	waitFor(t, "the three streams' usage", func() bool { return len(usageReport(t, s, "key=test-app").Rows) >= 3 })
	rep := usageReport(t, s, "key=test-app")
	models := map[string]bool{}
	for _, row := range rep.Rows {
		models[row.Model] = true
		if row.Requests != 1 || row.Estimated != 0 || row.Usage.Output != 8 || row.Usage.Input <= 0 || row.Client != "test-app" {
			t.Errorf("usage row %+v: want 1 request, reported usage, 8 output tokens", row)
		}
	}
	for _, m := range []string{chatParams.Model, messageParams.Model, "gemini-2.5-flash"} {
		if !models[m] {
			t.Errorf("no usage recorded for %s (rows %+v)", m, rep.Rows)
		}
	}
	// The metrics follow the usage rows in the same accounting step.
	waitFor(t, "strait_tokens_total to count the 24 output tokens", func() bool {
		_, metrics := adminGet(t, s.edgeAdmin, "/metrics")
		return strings.Contains(metrics, `strait_tokens_total{key="test-app",kind="output"} 24`)
	})
}

// TestQuotaSurvivesRestart: a key past its daily token quota gets a 429
// naming the quota (and telling SDKs not to retry); its usage, and so the
// refusal, survive an edge restart.
func TestQuotaSurvivesRestart(t *testing.T) {
	const key = "strait-quota-key-0123456789"
	opts := stackOptions{edgeEdit: edits(withKey("capped", key, auth.Limits{DailyTokens: 80}),
		func(f *edgecmd.File) { f.Limits.OutputEstimate = 40 })}
	s := newStack(t, opts)
	ctx := testCtx(t, 30*time.Second)
	if _, err := s.openai(option.WithAPIKey(key)).Chat.Completions.New(ctx, chatParams); err != nil {
		t.Fatal(err)
	}
	wantQuota := func(stage string) {
		t.Helper()
		_, err := s.openai(option.WithAPIKey(key)).Chat.Completions.New(ctx, chatParams)
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.StatusCode != 429 || oe.Code != "insufficient_quota" ||
			!strings.Contains(oe.Message, "daily token quota") || oe.Response.Header.Get("X-Should-Retry") != "false" {
			t.Fatalf("%s: got %v, want 429 insufficient_quota naming the daily token quota", stage, err)
		}
	}
	wantQuota("before restart")
	waitFor(t, "the first request's usage", func() bool { return usageReport(t, s, "key=capped").Total.Requests == 1 })
	used := usageReport(t, s, "key=capped").Total
	if used.Requests != 1 || used.Usage.Total() == 0 {
		t.Fatalf("usage before restart %+v", used)
	}
	s.stopEdge()
	s.startEdge(s.opts)
	s.waitReady()
	after := usageReport(t, s, "key=capped").Total
	if after.Requests != used.Requests || after.Usage != used.Usage {
		t.Fatalf("usage after restart %+v, before %+v", after, used)
	}
	wantQuota("after restart")
}

// TestKeysCLI: a key created with the CLI is printed once, stored only as a
// hash, honours its model patterns, and stops working within a second of
// being disabled, without a restart.
func TestKeysCLI(t *testing.T) {
	s := newStack(t, stackOptions{})
	cfg := filepath.Join(s.dir, "edge.yaml")
	writeConfig(t, cfg, s)
	out := runEdgeCLI(t, "keys", "create", "-c", cfg, "--model", "gpt-4o*", "--rpm", "100", "--endpoint", "files", "cli-app")
	key := strings.TrimSpace(out)
	addSecret(key, "CLI-created client key")
	if !strings.HasPrefix(key, "sk-strait-") || len(key) < 40 {
		t.Fatalf("keys create printed %q", out)
	}
	stored, err := os.ReadFile(filepath.Join(s.dir, "edge-data", "keys.json"))
	if err != nil || bytes.Contains(stored, []byte(key)) || !bytes.Contains(stored, []byte("cli-app")) {
		t.Fatalf("keys file (err %v) must name the key and hold only its hash:\n%s", err, stored)
	}
	ctx := testCtx(t, 20*time.Second)
	oa := s.openai(option.WithAPIKey(key))
	deadline := time.Now().Add(5 * time.Second)
	for { // the running edge picks the new key up from the file
		_, err := oa.Chat.Completions.New(ctx, chatParams)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new key never worked: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ac := anthropic.NewClient(anthropicOpts(s, key)...)
	_, err = ac.Messages.New(ctx, messageParams)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 403 || !strings.Contains(ae.RawJSON(), "permission_error") {
		t.Fatalf("a model outside the key's patterns: got %v, want 403", err)
	}
	runEdgeCLI(t, "keys", "disable", "-c", cfg, "cli-app")
	start := time.Now()
	for {
		_, err := oa.Chat.Completions.New(ctx, chatParams)
		var oe *openai.Error
		if errors.As(err, &oe) && oe.StatusCode == 401 && strings.Contains(oe.Message, "disabled") {
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatalf("the disabled key still works after %v: %v", time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("disabled key refused %v after the CLI returned", time.Since(start).Round(time.Millisecond))
	list := runEdgeCLI(t, "keys", "list", "-c", cfg)
	if !strings.Contains(list, "cli-app") || !strings.Contains(list, "disabled") || !strings.Contains(list, "inference,files") ||
		strings.Contains(list, key) {
		t.Fatalf("keys list:\n%s", list)
	}
	report := runEdgeCLI(t, "usage", "-c", cfg, "--key", "cli-app")
	if !strings.Contains(report, "cli-app") || !strings.Contains(report, chatParams.Model) {
		t.Fatalf("usage report:\n%s", report)
	}
}

// writeConfig writes a config naming the stack's data dir and admin port.
func writeConfig(t *testing.T, path string, s *stack) {
	t.Helper()
	adminAddr := strings.TrimPrefix(s.edgeAdmin, "http://")
	yaml := "listen: 127.0.0.1:0\ntls: {cert: " + s.path("front.pem") + ", key: " + s.path("front-key.pem") + "}\n" +
		"tunnel:\n  relays: [{address: " + s.relayAddr + "}]\n  cert: " + s.path("edge.pem") + "\n  key: " + s.path("edge-key.pem") +
		"\n  ca: " + s.path("ca.pem") + "\ndata_dir: " + s.path("edge-data") + "\nadmin_listen: " + adminAddr + "\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runEdgeCLI runs the strait-edge command line in process.
func runEdgeCLI(t *testing.T, args ...string) string {
	t.Helper()
	app := edgecmd.App()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	if err := app.Run(append([]string{"strait-edge"}, args...)); err != nil {
		t.Fatalf("strait-edge %v: %v\n%s", args, err, errOut.String())
	}
	return out.String()
}

// TestCutStreamBilledAsEstimated: an Anthropic stream that breaks off is
// billed for what was delivered: input as message_start reported it,
// output estimated from the text that reached the client, and the record
// says it was estimated. A complete request's log line and audit record
// name the relay and session and say usage was reported.
func TestCutStreamBilledAsEstimated(t *testing.T) {
	s := newStack(t, stackOptions{})
	ctx := testCtx(t, 20*time.Second)
	if _, err := anthropicMessages(ctx, t, s); err != nil {
		t.Fatal(err)
	}
	opts := append(anthropicOpts(s, clientKey), anthropicopt.WithHeader("X-Fake-Tokens", "50"),
		anthropicopt.WithHeader("X-Fake-Interval-Ms", "50"))
	ac := anthropic.NewClient(opts...)
	p := messageParams
	p.Model = "claude-cut"
	stream := ac.Messages.NewStreaming(ctx, p)
	deltas := 0
	for stream.Next() {
		if _, ok := stream.Current().AsAny().(anthropic.ContentBlockDeltaEvent); ok {
			if deltas++; deltas == 3 {
				s.fakeSrv.CloseClientConnections()
			}
		}
	}
	stream.Close()
	if stream.Err() == nil {
		t.Fatal("the cut stream ended cleanly")
	}
	var row *usagedb.Row
	deadline := time.Now().Add(5 * time.Second)
	for row == nil {
		for _, r := range usageReport(t, s, "model=claude-cut").Rows {
			row = &r
		}
		if row == nil && time.Now().After(deadline) {
			t.Fatal("no usage recorded for the cut stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if row.Requests != 1 || row.Estimated != 1 || row.Usage.Input == 0 || row.Usage.Output < 1 || row.Usage.Output >= 50 {
		t.Fatalf("cut stream usage %+v: want 1 estimated request, reported input, output from what was delivered", row)
	}
	t.Logf("cut after %d deltas: billed %+v", deltas, row.Usage)

	var logged bool
	for _, e := range s.edgeLogs.FilterMessage("request").All() {
		f := e.ContextMap()
		if f["model"] == messageParams.Model && f["key"] == "test-app" && f["usage"] == "reported" &&
			f["relay"] != "" && f["session"] != nil && f["tokens_out"] == int64(8) {
			logged = true
		}
	}
	if !logged {
		t.Error("no request log line with key, model, reported usage, relay and session")
	}
	data, err := os.ReadFile(s.path("audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var sawReported, sawEstimated bool
	for line := range strings.Lines(string(data)) {
		var ent audit.Entry
		if err := json.Unmarshal([]byte(line), &ent); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if ent.ClientIP != "127.0.0.1" || ent.Key != "test-app" || ent.RequestID == "" || ent.RequestBody != "" {
			t.Errorf("audit entry %+v", ent)
		}
		sawReported = sawReported || (ent.Model == messageParams.Model && ent.UsageSource == "reported" && ent.Relay != "")
		sawEstimated = sawEstimated || (ent.Model == "claude-cut" && ent.UsageSource == "estimated")
	}
	if !sawReported || !sawEstimated {
		t.Errorf("audit log lacks the reported (%v) or the estimated (%v) record:\n%s", sawReported, sawEstimated, data)
	}
}
