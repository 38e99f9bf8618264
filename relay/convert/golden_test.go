package convert

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// stable makes ids and timestamps deterministic for golden output.
func stable(t *testing.T) {
	t.Helper()
	n := 0
	oldID, oldNow := newID, now
	newID = func() string { n++; return fmt.Sprintf("gen%d", n) }
	now = func() time.Time { return time.Unix(1750000000, 0) }
	t.Cleanup(func() { newID, now = oldID, oldNow })
}

// golden compares got with the file, or rewrites it under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// providerOf names the dialect of a fixture by its file name prefix.
func providerOf(name string) llmapi.Dialect {
	switch {
	case strings.HasPrefix(name, "anthropic"):
		return llmapi.Messages
	case strings.HasPrefix(name, "gemini"):
		return llmapi.GenerateContent
	case strings.HasPrefix(name, "responses"):
		return llmapi.Responses
	}
	return llmapi.ChatCompletions
}

// clientRequests are the client requests the stream goldens convert for:
// the chat client asks for the usage chunk.
var clientRequests = map[llmapi.Dialect]*Request{
	llmapi.ChatCompletions: {Model: "client-model", Stream: true, IncludeUsage: true},
	llmapi.Messages:        {Model: "client-model", Stream: true},
	llmapi.Responses:       {Model: "client-model", Stream: true},
	llmapi.GenerateContent: {Model: "client-model", Stream: true},
}

// fixtureRequest is the client request a fixture answers: the chat client
// asks for the usage chunk when streaming, and the structured-output
// fixtures answer a request with a JSON schema.
func fixtureRequest(client llmapi.Dialect, fixture string, stream bool) *Request {
	r := &Request{Model: "client-model"}
	if stream {
		r = new(Request)
		*r = *clientRequests[client]
	}
	if strings.Contains(fixture, "structured") {
		r.Format = &Format{Name: "weather", Schema: []byte(`{"type":"object"}`)}
	}
	return r
}

// eachDirection runs f for every fixture (a recorded provider answer, its
// dialect named by the file name) and every other client dialect, with
// the fixture's bytes and stable ids.
func eachDirection(t *testing.T, fixtures []string, f func(t *testing.T, in string, src []byte, provider, client llmapi.Dialect)) {
	if len(fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range fixtures {
		provider := providerOf(filepath.Base(in))
		for _, client := range clientDialects {
			if client == provider {
				continue
			}
			t.Run(filepath.Base(in)+"/"+string(client), func(t *testing.T) {
				stable(t)
				src, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				f(t, in, src, provider, client)
			})
		}
	}
}

// TestStreamGolden runs every recorded provider stream through the
// translator into every other client dialect and compares the exact bytes
// the client would receive, plus how the stream ended.
func TestStreamGolden(t *testing.T) {
	fixtures, _ := filepath.Glob("testdata/stream/*.sse")
	arrays, _ := filepath.Glob("testdata/stream/*.json")
	eachDirection(t, append(fixtures, arrays...), func(t *testing.T, in string, src []byte, provider, client llmapi.Dialect) {
		var out bytes.Buffer
		p := &Plan{Client: client, Provider: provider, Stream: true, req: fixtureRequest(client, in, true)}
		err := p.Translate(bytes.NewReader(src), strings.HasSuffix(in, ".json"), func(b []byte) error {
			out.Write(b)
			return nil
		})
		fmt.Fprintf(&out, "-- end: %v\n", errText(err))
		golden(t, in+"."+string(client)+".golden", out.Bytes())
	})
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
