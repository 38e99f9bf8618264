package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The secret scan: every log line of every edge and relay the tests start
// (in process at debug level, and the real binaries' output), and every
// audit log, is kept in logSink; after all tests
// TestMain fails the run if any secret the tests used appears in it.
var (
	sinkMu  sync.Mutex
	logSink bytes.Buffer
	secrets = map[string]string{} // secret → what it is
)

type lockedSink struct{}

func (lockedSink) Write(p []byte) (int, error) {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	return logSink.Write(p)
}

func (lockedSink) Sync() error { return nil }

// teeToSink sends a logger's entries to core and, as JSON, to logSink.
func teeToSink(core zapcore.Core) zapcore.Core {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zapcore.NewTee(core, zapcore.NewCore(enc, lockedSink{}, zap.DebugLevel))
}

// addSecret registers a secret the logs must never contain.
func addSecret(secret, what string) {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	secrets[secret] = what
}

func init() {
	addSecret(clientKey, "client key")
	addSecret(providerKeys.OpenAI, "OpenAI provider key")
	addSecret(providerKeys.Anthropic, "Anthropic provider key")
	addSecret(providerKeys.Gemini, "Gemini provider key")
	addSecret("sk-provider-secret-0123456789", "provider key of the binaries' runs")
}

// watchSecrets registers the private keys in a stack's certificate
// directory and, when the test ends, copies its audit log into the sink.
func watchSecrets(t testing.TB, dir string) {
	keys, _ := filepath.Glob(filepath.Join(dir, "*-key.pem"))
	for _, k := range keys {
		data, err := os.ReadFile(k)
		if err != nil {
			t.Fatal(err)
		}
		addSecret(secretPart(t, data), "private key "+filepath.Base(k))
	}
	t.Cleanup(func() {
		logs, _ := filepath.Glob(filepath.Join(dir, "audit*.jsonl"))
		for _, l := range logs {
			if data, err := os.ReadFile(l); err == nil {
				_, _ = lockedSink{}.Write(data)
			}
		}
	})
}

// secretPart is the run of a PEM private key's base64 text that encodes
// only the secret scalar (not the ASN.1 header all keys share, nor the
// public key), so finding it in a log means the key leaked.
func secretPart(t testing.TB, pemData []byte) string {
	block, _ := pem.Decode(pemData)
	if block == nil {
		t.Fatal("no PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var secret []byte
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		secret, err = k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
	case ed25519.PrivateKey:
		secret = k.Seed()
	default:
		t.Fatalf("unexpected key type %T", key)
	}
	i := bytes.Index(block.Bytes, secret)
	if i < 0 {
		t.Fatal("secret scalar not found in the DER")
	}
	// Base64 encodes 3-byte groups as 4 characters: keep the groups that
	// lie wholly inside the secret.
	b64 := base64.StdEncoding.EncodeToString(block.Bytes)
	start, end := (i+2)/3*4, (i+len(secret))/3*4
	return b64[start:end]
}

// scanForSecrets reports every secret found in the sink; false if any.
func scanForSecrets(w io.Writer) bool {
	sinkMu.Lock()
	defer sinkMu.Unlock()
	ok := true
	for secret, what := range secrets {
		if bytes.Contains(logSink.Bytes(), []byte(secret)) {
			fmt.Fprintf(w, "SECRET SCAN: the logs contain a %s\n", what)
			ok = false
		}
	}
	fmt.Fprintf(w, "secret scan: %d secrets checked against %d bytes of logs and audit records\n", len(secrets), logSink.Len())
	return ok
}

// TestSecretScanFindsALeak proves the scan can fail: a log line carrying a
// registered secret is caught.
func TestSecretScanFindsALeak(t *testing.T) {
	var probe bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&probe), zap.DebugLevel)
	zap.New(core).Info("oops", zap.String("authorization", "Bearer "+clientKey))
	if !bytes.Contains(probe.Bytes(), []byte(clientKey)) {
		t.Fatal("the probe line lacks the key; the scan test proves nothing")
	}
	sinkMu.Lock()
	saved := logSink
	logSink = probe
	sinkMu.Unlock()
	defer func() { sinkMu.Lock(); logSink = saved; sinkMu.Unlock() }()
	if scanForSecrets(io.Discard) {
		t.Fatal("the scan missed a client key in a log line")
	}
}
