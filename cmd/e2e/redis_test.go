package e2e

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/scripts/redistest"
)

// redisEdit puts an edge's limits, quotas, usage and CLI keys in Redis.
// The timeout is generous: the shared test machine stalls for tens of
// milliseconds at times, and these tests are about sharing, not speed.
func redisEdit(url, onFailure string) func(*edgecmd.File) {
	return func(f *edgecmd.File) {
		f.DataDir = ""
		f.Store.Redis = &edgecmd.RedisFile{URL: url, Timeout: 2 * time.Second, OnFailure: onFailure, Edges: 2}
		f.ResponseCache = &edge.CacheConfig{Keys: []string{"test-app"}}
	}
}

// startSecondEdge starts another edge on the stack's relay, configured by
// edit, and returns its base URL and admin base URL.
func startSecondEdge(t *testing.T, s *stack, edit func(*edgecmd.File)) (string, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := s.edgeFile(stackOptions{})
	f.AdminListen = "127.0.0.1:0"
	edit(f)
	srv, err := edgecmd.Build(f, ln, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("second edge: %v", err)
		}
	})
	if err := srv.Edge.WaitReady(testCtx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return "https://" + ln.Addr().String(), "http://" + srv.Admin.Addr().String()
}

// writeRedisConfig writes a config for the CLI naming the stack's relay
// and certificates and the Redis at url, plus extra (a YAML line), and
// returns its path.
func writeRedisConfig(t *testing.T, s *stack, url, extra string) string {
	t.Helper()
	cfg := filepath.Join(s.dir, "edge-redis.yaml")
	yaml := "listen: 127.0.0.1:0\ntls: {cert: " + s.path("front.pem") + ", key: " + s.path("front-key.pem") + "}\n" +
		"tunnel:\n  relays: [{address: " + s.relayAddr + "}]\n  cert: " + s.path("edge.pem") + "\n  key: " + s.path("edge-key.pem") +
		"\n  ca: " + s.path("ca.pem") + "\nstore: {redis: {url: '" + url + "'}}\n" + extra + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// openaiAt is an OpenAI client of the edge at base.
func openaiAt(s *stack, base, key string) *openai.Client {
	c := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(s.client), option.WithMaxRetries(0))
	return &c
}

func statusOf(err error) int {
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe.StatusCode
	}
	if err == nil {
		return 200
	}
	return -1
}

// TestTwoEdgesOneRedis: two edges on one Redis enforce one policy. A key
// created with the CLI works on both within a second; its RPM limit holds
// across both to within one request; its usage from both is one report
// (admin /usage and the CLI); disabling it stops it on both within a
// second.
func TestTwoEdgesOneRedis(t *testing.T) {
	rs := redistest.Start(t)
	// The probes below ask with a key an edge does not know yet, as fast
	// as they can: the per-IP limit on such requests (60 a minute) is not
	// what this test is about, and over HTTP/1.1 they spent it before a
	// loaded machine had propagated the key.
	edit := func(f *edgecmd.File) {
		redisEdit(rs.URL(), "fail_closed")(f)
		f.Limits.UnauthenticatedRPM = 1 << 20
	}
	s := newStack(t, stackOptions{edgeEdit: edit})
	s.waitReady()
	second, _ := startSecondEdge(t, s, edit)
	edges := []string{s.edgeURL, second}
	cfg := writeRedisConfig(t, s, rs.URL(), "admin_listen: "+strings.TrimPrefix(s.edgeAdmin, "http://"))
	ctx := testCtx(t, 30*time.Second)
	// Probing with a model outside the key's patterns: 401 while the edge
	// does not know the key, 403 once it does, and no RPM spent.
	probe := openai.ChatCompletionNewParams{Model: "not-allowed", Messages: chatParams.Messages}
	waitAll := func(what string, key string, params openai.ChatCompletionNewParams, done func(error) bool) {
		t.Helper()
		start := time.Now()
		for _, base := range edges {
			for {
				_, err := openaiAt(s, base, key).Chat.Completions.New(ctx, params)
				if done(err) {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("%s: edge %s not there after %v: %v", what, base, time.Since(start), err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Logf("%s reached both edges %v after the CLI returned", what, time.Since(start).Round(time.Millisecond))
	}

	key := strings.TrimSpace(runEdgeCLI(t, "keys", "create", "-c", cfg, "--rpm", "6", "--model", "gpt-4o*", "team"))
	addSecret(key, "CLI-created client key in Redis")
	waitAll("create", key, probe, func(err error) bool { return statusOf(err) == 403 })

	ok, limited := 0, 0
	for i := range 12 {
		_, err := openaiAt(s, edges[i%2], key).Chat.Completions.New(ctx, chatParams)
		switch statusOf(err) {
		case 200:
			ok++
		case 429:
			limited++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if ok < 6 || ok > 7 || ok+limited != 12 {
		t.Fatalf("%d admitted, %d limited across two edges at 6 RPM; want 6 (±1) admitted", ok, limited)
	}
	t.Logf("RPM 6 across two edges: %d of 12 admitted", ok)

	deadline := time.Now().Add(5 * time.Second) // each edge writes usage once a second
	for {
		rep := usageReport(t, s, "key=team")
		if rep.Total.Requests == int64(ok) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage of both edges: %d requests reported, want %d", rep.Total.Requests, ok)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := runEdgeCLI(t, "usage", "-c", cfg, "--key", "team"); !strings.Contains(out, "team") || !strings.Contains(out, chatParams.Model) {
		t.Fatalf("strait-edge usage:\n%s", out)
	}

	runEdgeCLI(t, "keys", "disable", "-c", cfg, "team")
	waitAll("disable", key, probe, func(err error) bool {
		var oe *openai.Error
		return errors.As(err, &oe) && oe.StatusCode == 401 && strings.Contains(oe.Message, "disabled")
	})
	runEdgeCLI(t, "keys", "remove", "-c", cfg, "team")
	waitAll("remove", key, probe, func(err error) bool {
		var oe *openai.Error
		return errors.As(err, &oe) && oe.StatusCode == 401 && !strings.Contains(oe.Message, "disabled")
	})
	if list := runEdgeCLI(t, "keys", "list", "-c", cfg); strings.Contains(list, "team") {
		t.Fatalf("keys list after remove:\n%s", list)
	}

	// The response cache is shared too: what one edge recorded, the other
	// serves.
	var states []string
	var ids []string
	for i, base := range edges {
		if i == 1 {
			waitStored(t, s.edgeAdmin, 1)
		}
		var resp *http.Response
		c, err := openaiAt(s, base, clientKey).Chat.Completions.New(ctx, chatParams, option.WithResponseInto(&resp))
		if err != nil {
			t.Fatal(err)
		}
		states, ids = append(states, resp.Header.Get("X-Strait-Cache")), append(ids, c.ID)
	}
	if states[0] != "miss" || states[1] != "hit" || ids[0] != ids[1] {
		t.Fatalf("the same request on both edges: %v %v; want a miss, then a hit with the same completion", states, ids)
	}
}

// TestRedisGoesAway: Redis is killed while requests stream through two
// edges. The streams finish; then the fail_open edge keeps admitting (on
// its local share) and the fail_closed edge answers 503 with Retry-After
// in the caller's format; both report not ready and the metric says Redis
// is down. When Redis returns, both admit through it again.
func TestRedisGoesAway(t *testing.T) {
	rs := redistest.Start(t)
	s := newStack(t, stackOptions{edgeEdit: redisEdit(rs.URL(), "fail_open")})
	s.waitReady()
	closedURL, closedAdmin := startSecondEdge(t, s, redisEdit(rs.URL(), "fail_closed"))
	ctx := testCtx(t, 30*time.Second)

	type result struct {
		text string
		err  error
	}
	streams := make(chan result, 2)
	started := make(chan struct{}, 2)
	for _, base := range []string{s.edgeURL, closedURL} {
		go func() {
			p := chatParams
			st := openaiAt(s, base, clientKey).Chat.Completions.NewStreaming(ctx, p,
				option.WithHeader("X-Fake-Tokens", "20"), option.WithHeader("X-Fake-Interval-Ms", "25"))
			defer st.Close()
			var b strings.Builder
			first := true
			for st.Next() {
				if first {
					started <- struct{}{}
					first = false
				}
				if c := st.Current(); len(c.Choices) > 0 {
					b.WriteString(c.Choices[0].Delta.Content)
				}
			}
			streams <- result{b.String(), st.Err()}
		}()
	}
	<-started
	<-started
	rs.Stop()
	for range 2 {
		r := <-streams
		if r.err != nil || r.text == "" {
			t.Fatalf("a stream admitted before Redis went away failed: %q %v", r.text, r.err)
		}
	}

	if _, err := s.openai().Chat.Completions.New(ctx, chatParams); err != nil {
		t.Fatalf("fail_open edge with Redis down: %v", err)
	}
	resp, err := openaiAt(s, closedURL, clientKey).Chat.Completions.New(ctx, chatParams)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 503 || oe.Response.Header.Get("Retry-After") == "" ||
		!strings.Contains(oe.Message, "policy store") || oe.Type == "" {
		t.Fatalf("fail_closed edge with Redis down: %v %v; want 503 with Retry-After in OpenAI's format", resp, err)
	}
	for _, admin := range []string{s.edgeAdmin, closedAdmin} {
		if code, body := adminGet(t, admin, "/readyz"); code != http.StatusServiceUnavailable {
			t.Fatalf("%s/readyz with Redis down: %d %s", admin, code, body)
		}
		if _, body := adminGet(t, admin, "/metrics"); !strings.Contains(body, "strait_store_redis_up 0") {
			t.Fatalf("%s/metrics does not say Redis is down", admin)
		}
	}
	if _, body := adminGet(t, s.edgeAdmin, "/metrics"); !strings.Contains(body, "strait_store_local_admissions_total 1") {
		t.Fatalf("the fail_open edge does not count its local admission")
	}

	rs.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := openaiAt(s, closedURL, clientKey).Chat.Completions.New(ctx, chatParams)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fail_closed edge after Redis returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, admin := range []string{s.edgeAdmin, closedAdmin} { // each edge probes Redis every 250 ms
		for {
			code, body := adminGet(t, admin, "/readyz")
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz after Redis returned: %d %s", admin, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestEdgeStartsWithoutRedis: a fail_open edge starts while Redis is down,
// serves the config's keys, and picks up a key created in Redis once Redis
// is back (the registry's resync, as its subscription may have missed it).
func TestEdgeStartsWithoutRedis(t *testing.T) {
	rs := redistest.Start(t)
	rs.Stop()
	s := newStack(t, stackOptions{edgeEdit: redisEdit(rs.URL(), "fail_open")})
	s.waitReady()
	ctx := testCtx(t, 30*time.Second)
	if _, err := s.openai().Chat.Completions.New(ctx, chatParams); err != nil {
		t.Fatalf("the config's key on an edge started without Redis: %v", err)
	}
	rs.Restart()
	cfg := writeRedisConfig(t, s, rs.URL(), "")
	key := strings.TrimSpace(runEdgeCLI(t, "keys", "create", "-c", cfg, "late"))
	addSecret(key, "CLI-created client key in Redis")
	deadline := time.Now().Add(15 * time.Second) // pub/sub reconnects, or the 5 s resync finds it
	for {
		_, err := openaiAt(s, s.edgeURL, key).Chat.Completions.New(ctx, chatParams)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the key created once Redis was back never worked: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
