package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/tunnel/faultnet"
)

var (
	joinLine   = regexp.MustCompile(`strait-edge join (strait1\.\S+)`)
	apiKeyLine = regexp.MustCompile(`api_key:\s+(\S+)`)
)

// TestInitJoin is the two-machine deployment in two processes: `strait-relay
// init` with a provider key in the environment, the relay run from the
// relay.yaml it wrote, `strait-edge join` with the token it printed, the
// edge run from the edge.yaml join wrote, and a streamed request through
// the official OpenAI SDK with the key join printed. Then the refusals: the
// same token again, an expired token, a token pinning another CA, and the
// edge after `strait-relay edges revoke`, each with its reason.
func TestInitJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	relayBin, edgeBin := buildBinaries(t)
	dir := t.TempDir()
	fake := startProc(t, relayBin, "fake-provider", "--listen", "127.0.0.1:0", "--tokens", "5", "--interval", "5ms")
	fakeURL := fake.waitLine(t, fakeListening)

	// The relay machine: init, then run.
	t.Setenv("OPENAI_API_KEY", "sk-provider-secret-0123456789")
	t.Setenv("OPENAI_BASE_URL", fakeURL)
	addr := freeTCPUDPPort(t)
	relayDir := filepath.Join(dir, "relay")
	out := runCmd(t, relayBin, "init", "--dir", relayDir, "--data-dir", filepath.Join(dir, "relay-data"),
		"--addr", addr, "--listen", addr, "--admin-listen", "127.0.0.1:0")
	t.Logf("strait-relay init:\n%s", out)
	token := mustMatch(t, joinLine, out)
	if strings.Contains(token, "PRIVATE") || strings.Contains(out, "sk-provider-secret") {
		t.Fatal("init printed a key")
	}
	relayCfg := filepath.Join(relayDir, "relay.yaml")
	relay := startProc(t, relayBin, "run", "--config", relayCfg)
	listening := relay.waitLogFields(t, "relay listening")
	if listening["ws_addr"] != addr || listening["quic_addr"] != addr {
		t.Fatalf("relay serves ws %s, quic %s; want both on %s", listening["ws_addr"], listening["quic_addr"], addr)
	}

	// The edge machine: join, then run.
	edgeDir := filepath.Join(dir, "edge")
	join := func(tok string, extra ...string) (string, error) {
		args := append([]string{"join", "--dir", edgeDir, "--data-dir", filepath.Join(dir, "edge-data"), "--name", "edge-one",
			"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--front-dns", "localhost", "--front-ip", "127.0.0.1"}, extra...)
		b, err := exec.Command(edgeBin, append(args, tok)...).CombinedOutput()
		return string(b), err
	}
	out, err := join(token)
	if err != nil {
		t.Fatalf("join: %v\n%s", err, out)
	}
	t.Logf("strait-edge join:\n%s", out)
	key := mustMatch(t, apiKeyLine, out)
	relay.waitLog(t, "edge enrolled")
	edge := startProc(t, edgeBin, "run", "--config", filepath.Join(edgeDir, "edge.yaml"))
	edgeListening, _ := edge.waitEdgeStarted(t, 1)
	client := openai.NewClient(option.WithBaseURL("https://"+edgeListening["addr"]+"/v1/"), option.WithAPIKey(key),
		option.WithHTTPClient(frontClient(t, filepath.Join(edgeDir, "front-ca.pem"))), option.WithMaxRetries(0))
	st := client.Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
	var acc openai.ChatCompletionAccumulator
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil || len(acc.Choices) == 0 || acc.Choices[0].Message.Content == "" {
		t.Fatalf("through init and join: %v %+v", err, acc.Choices)
	}
	st.Close()
	checkDoctor(t, edgeBin, edgeDir, addr)
	jsonOut, err := exec.Command(edgeBin, "doctor", "--config", filepath.Join(edgeDir, "edge.yaml"), "--probes", "5", "--providers",
		"--key", key, "--edge-url", "https://"+edgeListening["addr"], "--model", "openai=gpt-4o-mini", "--json").Output()
	var withProviders struct {
		Providers []struct {
			Family string  `json:"family"`
			OK     bool    `json:"ok"`
			TTFT   float64 `json:"first_token_ms"`
		} `json:"providers"`
	}
	if jerr := json.Unmarshal(jsonOut, &withProviders); jerr != nil || len(withProviders.Providers) != 1 || !withProviders.Providers[0].OK ||
		withProviders.Providers[0].TTFT <= 0 {
		t.Fatalf("doctor --providers: %v %v\n%s", err, jerr, jsonOut)
	}
	t.Logf("first token through the edge (openai): %.1f ms", withProviders.Providers[0].TTFT)
	// The same diagnosis from the running edge's admin listener.
	jsonOut, err = exec.Command(edgeBin, "doctor", "--admin", "http://"+edgeListening["admin_addr"], "--probes", "5", "--json").Output()
	var fromAdmin struct {
		Relays []struct {
			TLS struct{ OK bool } `json:"tls"`
			UDP struct{ OK bool } `json:"udp_quic"`
			FEC struct{ OK bool } `json:"quic_fec"` // the enrolled config leaves tunnel.quic_fec at its default, on
		} `json:"relays"`
	}
	if jerr := json.Unmarshal(jsonOut, &fromAdmin); jerr != nil || len(fromAdmin.Relays) != 1 || !fromAdmin.Relays[0].TLS.OK || !fromAdmin.Relays[0].UDP.OK ||
		!fromAdmin.Relays[0].FEC.OK {
		t.Fatalf("doctor --admin: %v %v\n%s", err, jerr, jsonOut)
	}

	// Refusals, each with its reason; none writes anything.
	tok, err := enrol.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	addSecret(tok.Secret, "join token secret")
	addSecret(key, "client key from join")
	wrongFP := tok
	wrongFP.CAFingerprint = strings.Repeat("ab", 32)
	expired := mustMatch(t, joinLine, runCmd(t, relayBin, "edges", "token", "--config", relayCfg, "--ttl", "1ns"))
	for _, tc := range []struct{ name, token, want string }{
		{"reused", token, enrol.CodeUsed},
		{"expired", expired, enrol.CodeExpired},
		{"wrong fingerprint", wrongFP.String(), enrol.CodeFingerprint},
	} {
		out, err := join(tc.token, "--force")
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s token: err %v, output %q; want the reason %s", tc.name, err, out, tc.want)
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(out))
	}

	// Revoke the edge: its next handshake is refused, no relay restart.
	out = runCmd(t, relayBin, "edges", "revoke", "--config", relayCfg, "edge-one")
	if !strings.Contains(out, "revoked edge-one") {
		t.Fatalf("revoke: %s", out)
	}
	if out := runCmd(t, relayBin, "edges", "list", "--config", relayCfg); !strings.Contains(out, "revoked") || !strings.Contains(out, "edge-one") {
		t.Errorf("edges list after revoke:\n%s", out)
	}
	edge.terminate(t)
	edge = startProc(t, edgeBin, "run", "--config", filepath.Join(edgeDir, "edge.yaml"))
	refused := relay.waitLogFields(t, "tunnel handshake refused")
	if !strings.Contains(refused["reason"], "revoked") {
		t.Errorf("revoked edge refused for %q", refused["reason"])
	}
	edge.terminate(t)
	relay.terminate(t)
	fake.terminate(t)
}

func mustMatch(t *testing.T, re *regexp.Regexp, s string) string {
	t.Helper()
	m := re.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no match for %v in:\n%s", re, s)
	}
	return m[1]
}

// freeTCPUDPPort finds a loopback port free for both TCP and UDP (the
// relay serves QUIC on its WebSocket port) and returns host:port.
func freeTCPUDPPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		ln.Close()
		if err == nil {
			udp.Close()
			return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// frontClient trusts the CA join made for the edge's HTTPS certificate.
func frontClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// checkDoctor runs `strait-edge doctor` on a healthy path, then with UDP
// to the relay black-holed (faultnet): the second report must name UDP as
// the cause and the fallback to WebSocket.
func checkDoctor(t *testing.T, edgeBin, edgeDir, relayAddr string) {
	t.Helper()
	cfg := filepath.Join(edgeDir, "edge.yaml")
	doctor := func(cfg string, args ...string) (string, error) {
		b, err := exec.Command(edgeBin, append([]string{"doctor", "--config", cfg, "--probes", "10"}, args...)...).Output()
		return string(b), err
	}
	out, err := doctor(cfg)
	t.Logf("strait-edge doctor (healthy):\n%s", out)
	// Under a heavy load scheduling stalls may pass for loss, so only the
	// path checks must be clean here.
	if !strings.Contains(out, "QUIC handshake completed") || strings.Contains(out, "FAIL") || strings.Contains(out, "UDP is blocked") {
		t.Fatalf("doctor on a healthy path: %v\n%s", err, out)
	}

	udp, err := faultnet.NewUDPProxy(relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udp.SetBlackhole(true)
	blocked := strings.Replace(readFile(t, cfg), fmt.Sprintf("{address: %q}", relayAddr),
		fmt.Sprintf("{address: %q, quic_address: %q}", relayAddr, udp.Addr().String()), 1)
	out, err = doctor(writeFile(t, edgeDir, "edge-udp-blocked.yaml", blocked), "--json", "--timeout", "1s")
	t.Logf("strait-edge doctor --json (UDP black-holed):\n%s", out)
	var rep struct {
		OK     bool `json:"ok"`
		Relays []struct {
			UDP       struct{ OK bool } `json:"udp_quic"`
			WebSocket struct{ OK bool } `json:"websocket"`
			Transport string            `json:"transport"`
			Advice    []string          `json:"advice"`
		} `json:"relays"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || err == nil {
		t.Fatalf("doctor with UDP blocked: exit %v, JSON %v", err, jerr)
	}
	r := rep.Relays[0]
	if rep.OK || r.UDP.OK || !r.WebSocket.OK || r.Transport != "ws" || len(r.Advice) == 0 || !strings.HasPrefix(r.Advice[0], "UDP is blocked") {
		t.Fatalf("doctor did not name UDP as the cause: %+v", rep)
	}

	// The lab's border: 150 ms round trip, 3 % loss on UDP. The probes'
	// round trip cannot be below the emulated delay; the loss estimate is
	// logged (200 probes give a coarse one).
	tcp, err := faultnet.NewTCPProxy(relayAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tcp.SetDelay(75 * time.Millisecond)
	udp.SetBlackhole(false)
	udp.SetDelay(75 * time.Millisecond)
	udp.SetLoss(0.03)
	lossy := strings.Replace(readFile(t, cfg), fmt.Sprintf("{address: %q}", relayAddr),
		fmt.Sprintf("{address: %q, quic_address: %q, server_name: 127.0.0.1}", tcp.Addr().String(), udp.Addr().String()), 1)
	out, _ = doctor(writeFile(t, edgeDir, "edge-lossy.yaml", lossy), "--probes", "200")
	t.Logf("strait-edge doctor (150 ms, 3 %% UDP loss):\n%s", out)
	median := regexp.MustCompile(`median ([0-9.]+)`).FindStringSubmatch(out)
	if median == nil {
		t.Fatalf("no round trip in the report")
	}
	if m, _ := strconv.ParseFloat(median[1], 64); m < 150 {
		t.Errorf("median round trip %.1f ms through a 150 ms path", m)
	}
}
