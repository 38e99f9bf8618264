package tunneltest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/scripts/fakeprovider"
)

// Family is one API family's streaming request to the fake provider.
type Family struct {
	Name, Path, Body string
	Header           [2]string // the family's credential header and a value
	AnthropicVersion string
}

// Families are streaming requests of the three API families.
var Families = []Family{
	{"openai", "/v1/chat/completions",
		`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`,
		[2]string{"Authorization", "Bearer sk-test"}, ""},
	{"anthropic", "/v1/messages",
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Say hello."}]}`,
		[2]string{"x-api-key", "sk-ant-test"}, "2023-06-01"},
	{"gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
		`{"contents":[{"role":"user","parts":[{"text":"Say hello."}]}]}`,
		[2]string{"x-goog-api-key", "AIza-test"}, ""},
}

// SSEStreams streams n completions of tokens pieces each from the fake
// provider in fam's format and returns their events, each with its
// blank-line terminator: the bytes the relay writes to a stream per event.
// The completions differ as real ones do in ids (each is another request).
func SSEStreams(tb testing.TB, fam Family, n, tokens int) [][][]byte {
	tb.Helper()
	srv := httptest.NewServer(fakeprovider.New(fakeprovider.Config{Tokens: tokens}))
	defer srv.Close()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(tokens)))
	out := make([][][]byte, n)
	for i := range out {
		out[i] = sseEvents(tb, srv, fam)
		for j, ev := range out[i] {
			out[i][j] = fakeToken.ReplaceAllFunc(ev, func([]byte) []byte { return word(rng) })
		}
	}
	return out
}

// fakeToken is the fake provider's text ("tok0", "tok1", …), which would
// compress far better than a model's: each is replaced by a random word.
var fakeToken = regexp.MustCompile(`tok[0-9]+`)

// word returns 2 to 9 random lowercase letters: an upper bound on what real
// text costs, which repeats itself more than that.
func word(rng *rand.Rand) []byte {
	b := make([]byte, 2+rng.IntN(8))
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return b
}

// sseEvents makes one streaming request to srv and splits the answer into
// events.
func sseEvents(tb testing.TB, srv *httptest.Server, fam Family) [][]byte {
	req, err := http.NewRequest(http.MethodPost, srv.URL+fam.Path, strings.NewReader(fam.Body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(fam.Header[0], fam.Header[1])
	if fam.AnthropicVersion != "" {
		req.Header.Set("anthropic-version", fam.AnthropicVersion)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s: HTTP %d, %v: %s", fam.Name, resp.StatusCode, err, body)
	}
	sep := []byte("\n\n")
	if bytes.Contains(body, []byte("\r\n\r\n")) {
		sep = []byte("\r\n\r\n")
	}
	var events [][]byte
	for len(body) > 0 {
		i := bytes.Index(body, sep)
		if i < 0 {
			tb.Fatalf("%s: unterminated event %q", fam.Name, body)
		}
		events = append(events, body[:i+len(sep)])
		body = body[i+len(sep):]
	}
	return events
}

// CompressPath is a case of a transport's test that compression follows the
// path's round trip (tunnel.LongPath) over a loopback pair.
type CompressPath struct {
	Name string
	// MinRTT is the session's compress minimum.
	MinRTT time.Duration
	// Compressed is whether writes must shrink on loopback.
	Compressed bool
}

// CompressPaths are the cases: no minimum compresses on loopback, and
// loopback is far below an hour's minimum.
var CompressPaths = []CompressPath{
	{"no minimum", 0, true},
	{"loopback below the minimum", time.Hour, false},
}
