package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// terminators are how a complete stream ends in each client dialect (or an
// in-band error event, which also tells the client the answer is over).
var terminators = map[llmapi.Dialect][][]byte{
	llmapi.ChatCompletions: {[]byte("data: [DONE]\n\n"), []byte(`data: {"error":`)},
	llmapi.Messages:        {[]byte("event: message_stop\n"), []byte("event: error\n")},
	llmapi.Responses:       {[]byte("event: response.completed\n"), []byte("event: response.incomplete\n"), []byte("event: error\n")},
	llmapi.GenerateContent: {[]byte(`"finishReason":`), []byte(`data: {"error":`)},
}

// FuzzTranslate feeds random and truncated provider streams to every
// direction. Properties: no panic; and a stream that ends without error
// has told the client it ended (never a silent truncation), while one that
// the translator calls broken ends in an error the caller can report.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("testdata/stream/*.sse")
	arrays, _ := filepath.Glob("testdata/stream/*.json")
	for i, in := range append(files, arrays...) {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		prov := uint8(providerIndex(providerOf(filepath.Base(in))))
		f.Add(prov, uint8(i), src)
		f.Add(prov, uint8(i+1), src[:len(src)/2])
		f.Add(prov, uint8(i+2), src[:len(src)*3/4])
	}
	f.Fuzz(func(t *testing.T, prov, cl uint8, src []byte) {
		provider := providerDialects[int(prov)%len(providerDialects)]
		client := clientDialects[int(cl)%len(clientDialects)]
		if provider == client {
			return
		}
		var out bytes.Buffer
		p := &Plan{Client: client, Provider: provider, Stream: true, req: &Request{Model: "m", IncludeUsage: cl&1 == 0}}
		err := p.Translate(bytes.NewReader(src), provider == llmapi.GenerateContent && bytes.HasPrefix(bytes.TrimSpace(src), []byte("[")),
			func(b []byte) error { out.Write(b); return nil })
		if err != nil {
			return
		}
		for _, term := range terminators[client] {
			if bytes.Contains(out.Bytes(), term) {
				return
			}
		}
		t.Fatalf("%s→%s ended cleanly without telling the client:\n%s", provider, client, out.Bytes())
	})
}

var providerDialects = []llmapi.Dialect{llmapi.ChatCompletions, llmapi.Messages, llmapi.GenerateContent, llmapi.Responses}
var clientDialects = []llmapi.Dialect{llmapi.ChatCompletions, llmapi.Messages, llmapi.Responses, llmapi.GenerateContent}

func providerIndex(d llmapi.Dialect) int {
	for i, p := range providerDialects {
		if p == d {
			return i
		}
	}
	return 0
}

// FuzzRequest feeds random client bodies to every request converter: no
// panic, and either an error or a body that is valid JSON.
func FuzzRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/request/*.*.json")
	for _, in := range files {
		src, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), src)
		f.Add(uint8(1), src)
		f.Add(uint8(2), src)
		f.Add(uint8(3), src)
		f.Add(uint8(7), src)
	}
	f.Fuzz(func(t *testing.T, pair uint8, body []byte) {
		client := clientDialects[int(pair)%len(clientDialects)]
		provider := providerDialects[int(pair/4)%len(providerDialects)]
		if !Supported(client, provider) {
			return
		}
		p, err := fixturePlan(client, provider, body)
		if err != nil {
			return
		}
		if !jsonValid(p.Body) {
			t.Fatalf("invalid JSON produced: %s", p.Body)
		}
	})
}
