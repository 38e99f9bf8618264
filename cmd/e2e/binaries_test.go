package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestBinaries is the multi-process smoke test: the real strait-relay and
// strait-edge binaries, configured from YAML files, with the fake provider
// from `strait-relay fake-provider`. It checks the CLI commands, a streamed
// SDK call, recovery from a SIGKILLed relay, and clean SIGTERM exits.
func TestBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	relayBin, edgeBin := buildBinaries(t)
	dir := t.TempDir()

	if out := runCmd(t, relayBin, "version"); !strings.HasPrefix(out, "strait-relay ") {
		t.Fatalf("version: %q", out)
	}
	runCmd(t, relayBin, "certs", "--dir", dir, "--front-dns", "localhost", "--front-ip", "127.0.0.1")
	if _, err := exec.Command(relayBin, "certs", "--dir", dir).CombinedOutput(); err == nil {
		t.Fatal("certs overwrote existing files without --force")
	}

	fake := startProc(t, relayBin, "fake-provider", "--listen", "127.0.0.1:0", "--tokens", "20", "--interval", "10ms")
	fakeURL := fake.waitLine(t, fakeListening)
	relayCfg := writeFile(t, dir, "relay.yaml", fmt.Sprintf(`listen: "127.0.0.1:0"
listen_quic: "127.0.0.1:0"
tls: {cert: %[1]s/relay.pem, key: %[1]s/relay-key.pem, client_ca: %[1]s/ca.pem}
heartbeat: 1s
heartbeat_timeout: 2s
providers:
  - {kind: openai, base_url: %[2]q, api_keys: ["${TEST_PROVIDER_KEY}"]}
`, dir, fakeURL))
	if out := runCmd(t, relayBin, "check", "--config", relayCfg); !strings.Contains(out, "config OK") || strings.Contains(out, "sk-provider-secret") {
		t.Fatalf("relay check printed %q", out)
	}
	relay := startProc(t, relayBin, "run", "--config", relayCfg)
	listening := relay.waitLogFields(t, "relay listening")
	relayAddr, quicAddr := listening["ws_addr"], listening["quic_addr"]

	edgeCfg := writeFile(t, dir, "edge.yaml", fmt.Sprintf(`listen: "127.0.0.1:0"
tls: {cert: %[1]s/front.pem, key: %[1]s/front-key.pem}
tunnel:
  relays: [{address: %[2]q, quic_address: %[4]q, transport: auto, server_name: localhost}]
  cert: %[1]s/edge.pem
  key: %[1]s/edge-key.pem
  ca: %[1]s/ca.pem
  reconnect_min: 50ms
  reconnect_max: 200ms
client_keys: [{name: smoke, key: %[3]q}]
`, dir, relayAddr, clientKey, quicAddr))
	if out := runCmd(t, edgeBin, "check", "--config", edgeCfg); !strings.Contains(out, "config OK") || strings.Contains(out, clientKey) {
		t.Fatalf("edge check printed %q", out)
	}
	edge := startProc(t, edgeBin, "run", "--config", edgeCfg)
	listening, ups := edge.waitEdgeStarted(t, 2) // two sessions per relay by default, both on QUIC
	edgeURL := "https://" + listening["addr"]
	for _, up := range ups {
		if up["transport"] != "quic" {
			t.Fatalf("transport auto chose %q with QUIC available", up["transport"])
		}
	}
	s := &stack{t: t, dir: dir, edgeURL: edgeURL}
	s.client = s.httpClient()
	defer s.client.CloseIdleConnections()
	client := openai.NewClient(option.WithBaseURL(edgeURL+"/v1/"), option.WithAPIKey(clientKey),
		option.WithHTTPClient(s.client), option.WithMaxRetries(0))
	stream := func() error {
		st := client.Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
		defer st.Close()
		var acc openai.ChatCompletionAccumulator
		for st.Next() {
			acc.AddChunk(st.Current())
		}
		if err := st.Err(); err != nil {
			return err
		}
		if len(acc.Choices) == 0 || acc.Choices[0].Message.Content == "" {
			return fmt.Errorf("empty completion")
		}
		return nil
	}
	if err := stream(); err != nil {
		t.Fatalf("through the binaries: %v", err)
	}

	// kill -9 the relay and start it again on the same port.
	relay.kill(t)
	cfg2 := strings.Replace(readFile(t, relayCfg), `listen: "127.0.0.1:0"`, fmt.Sprintf("listen: %q", relayAddr), 1)
	cfg2 = strings.Replace(cfg2, `listen_quic: "127.0.0.1:0"`, fmt.Sprintf("listen_quic: %q", quicAddr), 1)
	relayCfg2 := writeFile(t, dir, "relay2.yaml", cfg2)
	relay = startProc(t, relayBin, "run", "--config", relayCfg2)
	relay.waitLog(t, "relay listening")
	restarted := time.Now()
	edge.waitLog(t, "tunnel session up")
	t.Logf("edge reconnected %v after the restarted relay listened", time.Since(restarted))
	if err := stream(); err != nil {
		t.Fatalf("after relay restart (%v): %v", time.Since(restarted), err)
	}

	edge.terminate(t)
	relay.terminate(t)
	fake.terminate(t)
}

// fakeListening matches the fake provider's start line.
var fakeListening = regexp.MustCompile(`listening on (http://\S+)`)

// The binaries are built once per test run, shared by the tests that run
// processes, and removed by TestMain.
var (
	binOnce             sync.Once
	binDir              string
	binErr              error
	relayPath, edgePath string
)

// buildBinaries builds strait-relay and strait-edge (once) and returns
// their paths.
func buildBinaries(t *testing.T) (relayBin, edgeBin string) {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "strait-e2e-bin-"); binErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", binDir+"/", "./cmd/strait-edge", "./cmd/strait-relay")
		build.Dir = "../.."
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
		relayPath, edgePath = filepath.Join(binDir, "strait-relay"), filepath.Join(binDir, "strait-edge")
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return relayPath, edgePath
}

func removeBinaries() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// echoLogs copies every child's log lines to stderr, for debugging:
// STRAIT_E2E_ECHO=1 go test ./cmd/e2e -run TestBinaries -v
var echoLogs = os.Getenv("STRAIT_E2E_ECHO") != ""

// proc is a child process whose stderr (zap JSON logs) and stdout are
// scanned line by line.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
	seen  map[string]int // how many log lines of each message were consumed
}

func startProc(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "TEST_PROVIDER_KEY=sk-provider-secret-0123456789")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	p := &proc{cmd: cmd, lines: make(chan string, 1024), done: make(chan error, 1), seen: map[string]int{}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{}, 2)
	for _, r := range []io.Reader{stdout, stderr} {
		go func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				_, _ = lockedSink{}.Write(append(sc.Bytes(), '\n')) // for the secret scan
				if echoLogs {
					fmt.Fprintf(os.Stderr, "[%s] %s\n", filepath.Base(bin), sc.Text())
				}
				if strings.Contains(sc.Text(), `"msg":"request",`) {
					continue // one per request: under load they would crowd out the lines tests wait for
				}
				select {
				case p.lines <- sc.Text():
				default: // a chatty child must not block on a test that stopped reading
				}
			}
			scanned <- struct{}{}
		}()
	}
	go func() { <-scanned; <-scanned; p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitLine waits for a line matching re and returns its first group.
func (p *proc) waitLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case <-timeout:
			t.Fatalf("%s: no line matching %v", p.cmd.Path, re)
		}
	}
}

// waitEdgeStarted waits until an edge process has logged "edge listening"
// and n "tunnel session up" lines, in any order: the pool dials before the
// front listener starts, so sessions may come up first (waiting for the
// listener alone would skip those lines). It returns the listening line's
// fields and the session lines.
func (p *proc) waitEdgeStarted(t *testing.T, n int) (listening map[string]string, ups []map[string]string) {
	t.Helper()
	for listening == nil || len(ups) < n {
		l := p.waitLogAny(t, "edge listening", "tunnel session up")
		if l["msg"] == "edge listening" {
			listening = l
		} else {
			ups = append(ups, l)
		}
	}
	return listening, ups
}

// waitLog waits for a JSON log line with message msg and returns its "addr".
func (p *proc) waitLog(t *testing.T, msg string) string {
	t.Helper()
	return p.waitLogFields(t, msg)["addr"]
}

// waitLogFields waits for a JSON log line with message msg and returns its
// string and number fields (numbers formatted with fmt.Sprint).
func (p *proc) waitLogFields(t *testing.T, msg string) map[string]string {
	t.Helper()
	return p.waitLogAny(t, msg)
}

// waitLogAny waits for a JSON log line with any of the messages and returns
// its fields as waitLogFields does, "msg" included.
func (p *proc) waitLogAny(t *testing.T, msgs ...string) map[string]string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l := <-p.lines:
			var entry map[string]any
			if json.Unmarshal([]byte(l), &entry) != nil {
				continue
			}
			if m, _ := entry["msg"].(string); !slices.Contains(msgs, m) {
				continue
			}
			out := map[string]string{}
			for k, v := range entry {
				switch v := v.(type) {
				case string:
					out[k] = v
				case float64:
					out[k] = fmt.Sprint(v)
				}
			}
			return out
		case <-timeout:
			t.Fatalf("%s: no %q log line", p.cmd.Path, msgs)
		}
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and expects a clean exit within the drain time.
func (p *proc) terminate(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM", filepath.Base(p.cmd.Path), err)
		}
	case <-time.After(40 * time.Second):
		t.Errorf("%s did not exit after SIGTERM", filepath.Base(p.cmd.Path))
	}
}

func runCmd(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TEST_PROVIDER_KEY=sk-provider-secret-0123456789")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(bin), args, err, out.String())
	}
	return out.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
