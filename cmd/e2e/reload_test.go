package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestReloadOnSIGHUP runs both binaries and changes their config files
// under them: SIGHUP applies new client keys and a new public certificate
// on the edge, and a new provider (a route) on the relay, while a stream
// that started before keeps flowing; a broken file is then rejected with
// a logged reason and the running config stays.
func TestReloadOnSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries and runs processes")
	}
	relayBin, edgeBin := buildBinaries(t)
	dir := t.TempDir()
	next := filepath.Join(dir, "next") // a second front certificate, from another CA
	for _, d := range []string{dir, next} {
		runCmd(t, relayBin, "certs", "--dir", d, "--front-dns", "localhost", "--front-ip", "127.0.0.1")
	}
	fake := startProc(t, relayBin, "fake-provider", "--listen", "127.0.0.1:0")
	fakeURL := fake.waitLine(t, fakeListening)

	relayHead := fmt.Sprintf(`listen: 127.0.0.1:0
listen_quic: 127.0.0.1:0
tls: {cert: %[1]s/relay.pem, key: %[1]s/relay-key.pem, client_ca: %[1]s/ca.pem}
`, dir)
	openaiProvider := fmt.Sprintf("  - {kind: openai, base_url: %q, api_keys: [\"${TEST_PROVIDER_KEY}\"], allow_headers: [X-Fake-*]}\n", fakeURL)
	deepseek := fmt.Sprintf("  - {name: deepseek, kind: openai, base_url: %q, api_keys: [\"${TEST_PROVIDER_KEY}\"], allow_headers: [X-Fake-*]}\n", fakeURL)
	relayCfg := writeFile(t, dir, "relay.yaml", relayHead+"providers:\n"+openaiProvider)
	relay := startProc(t, relayBin, "run", "--config", relayCfg)
	addrs := relay.waitLogFields(t, "relay listening")

	const oldKey, newKey = "strait-client-old-0123456789", "strait-client-new-0123456789"
	edgeFile := func(front, key string) string {
		return fmt.Sprintf(`listen: "127.0.0.1:0"
tls: {cert: %[1]s/front.pem, key: %[1]s/front-key.pem}
tunnel:
  relays: [{address: %[2]q, quic_address: %[3]q, server_name: localhost}]
  cert: %[4]s/edge.pem
  key: %[4]s/edge-key.pem
  ca: %[4]s/ca.pem
client_keys: [{name: reload, key: %[5]q}]
`, front, addrs["ws_addr"], addrs["quic_addr"], dir, key)
	}
	edgeCfg := writeFile(t, dir, "edge.yaml", edgeFile(dir, oldKey))
	edge := startProc(t, edgeBin, "run", "--config", edgeCfg)
	listening, _ := edge.waitEdgeStarted(t, 2)
	edgeURL := "https://" + listening["addr"]

	roots := x509.NewCertPool()
	for _, d := range []string{dir, next} {
		roots.AppendCertsFromPEM([]byte(readFile(t, filepath.Join(d, "front-ca.pem"))))
	}
	httpc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer httpc.CloseIdleConnections()
	call := func(key, prefix string) error {
		c := openai.NewClient(option.WithBaseURL(edgeURL+prefix+"/v1/"), option.WithAPIKey(key),
			option.WithHTTPClient(httpc), option.WithMaxRetries(0))
		_, err := c.Chat.Completions.New(testCtx(t, 10*time.Second), chatParams)
		return err
	}
	status := func(err error) int {
		var e *openai.Error
		if errors.As(err, &e) {
			return e.StatusCode
		}
		if err != nil {
			return -1
		}
		return 200
	}
	expect := func(step, key, prefix string, want int) {
		t.Helper()
		if err := call(key, prefix); status(err) != want {
			t.Errorf("%s: %s key on %q: %v; want status %d", step, key, prefix+"/v1", err, want)
		}
	}
	expect("before", oldKey, "", 200)
	expect("before", newKey, "", 401)
	expect("before", oldKey, "/deepseek", 404)

	// A stream that spans the reload: the reload starts once its first chunk
	// arrived (or it ended early, which the check below reports).
	spanning := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		signal := sync.OnceFunc(func() { close(started) })
		defer signal()
		c := openai.NewClient(option.WithBaseURL(edgeURL+"/v1/"), option.WithAPIKey(oldKey),
			option.WithHTTPClient(httpc), option.WithMaxRetries(0))
		st := c.Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams,
			option.WithHeader("X-Fake-Tokens", "30"), option.WithHeader("X-Fake-Interval-Ms", "50"))
		n := 0
		for st.Next() {
			signal()
			n++
		}
		if err := st.Err(); err != nil || n < 30 {
			spanning <- fmt.Errorf("%d chunks, %v", n, err)
			return
		}
		spanning <- nil
	}()
	<-started

	writeFile(t, dir, "relay.yaml", relayHead+"providers:\n"+openaiProvider+deepseek)
	writeFile(t, dir, "edge.yaml", edgeFile(next, newKey))
	hangup(t, relay, edge)
	relay.waitLogFields(t, "config reloaded")
	edge.waitLogFields(t, "config reloaded")
	expect("after reload", newKey, "", 200)
	expect("after reload", oldKey, "", 401)
	expect("after reload", newKey, "/deepseek", 200)
	if got, want := presentedCert(t, edgeURL[len("https://"):], roots), readFile(t, filepath.Join(next, "front.pem")); !samePEM(got, want) {
		t.Error("the edge still presents the old public certificate after the reload")
	}
	if err := <-spanning; err != nil {
		t.Errorf("stream spanning the reload: %v", err)
	}

	// Broken files: an unknown provider kind, an empty client key list.
	writeFile(t, dir, "relay.yaml", relayHead+"providers:\n  - {kind: nosuch, base_url: \"http://x\", api_keys: [k]}\n")
	writeFile(t, dir, "edge.yaml", edgeFile(next, ""))
	hangup(t, relay, edge)
	if why := relay.waitLogFields(t, "config reload rejected; the running config stays"); why["error"] == "" {
		t.Error("relay rejected the config without a reason")
	}
	if why := edge.waitLogFields(t, "config reload rejected; the running config stays"); why["error"] == "" {
		t.Error("edge rejected the config without a reason")
	}
	expect("after a rejected reload", newKey, "/deepseek", 200)
	edge.terminate(t)
	relay.terminate(t)
	fake.terminate(t)
}

func hangup(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
}

// presentedCert returns the PEM of the certificate the server at addr
// presents.
func presentedCert(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.ConnectionState().PeerCertificates[0].Raw}))
}

// samePEM compares the first certificate of two PEM texts.
func samePEM(a, b string) bool {
	ba, _ := pem.Decode([]byte(a))
	bb, _ := pem.Decode([]byte(b))
	return ba != nil && bb != nil && bytes.Equal(ba.Bytes, bb.Bytes)
}
