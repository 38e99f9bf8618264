package convert

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestEmbeddingsAcross: OpenAI embeddings to a Gemini model and Gemini
// (batch) embeddings to an OpenAI model: the requests, the answers with
// vectors in input order, dimensions, usage (estimated where Gemini reports
// none) and OpenAI's base64 encoding; Anthropic has no embeddings API.
func TestEmbeddingsAcross(t *testing.T) {
	for _, tc := range []struct {
		name             string
		client, provider llmapi.Dialect
		path, body       string
		wantPath         string
		wantBody         string
		answer           string
		wantAnswer       string
	}{
		{"openai to gemini", llmapi.ChatCompletions, llmapi.GenerateContent, "/v1/embeddings", `{"model":"x","input":["hello","world!"],"dimensions":2}`,
			"/v1beta/models/gemini-embedding-001:batchEmbedContents",
			`{"requests":[{"content":{"parts":[{"text":"hello"}]},"model":"models/gemini-embedding-001","outputDimensionality":2},{"content":{"parts":[{"text":"world!"}]},"model":"models/gemini-embedding-001","outputDimensionality":2}]}`,
			`{"embeddings":[{"values":[0.5,-1]},{"values":[0.25,1]}]}`,
			`{"data":[{"embedding":[0.5,-1],"index":0,"object":"embedding"},{"embedding":[0.25,1],"index":1,"object":"embedding"}],"model":"gemini-embedding-001","object":"list","usage":{"prompt_tokens":4,"total_tokens":4}}`},
		{"openai base64", llmapi.ChatCompletions, llmapi.GenerateContent, "/v1/embeddings", `{"model":"x","input":"hi","encoding_format":"base64"}`,
			"/v1beta/models/gemini-embedding-001:batchEmbedContents",
			`{"requests":[{"content":{"parts":[{"text":"hi"}]},"model":"models/gemini-embedding-001"}]}`,
			`{"embeddings":[{"values":[1,0.5]}]}`,
			`{"data":[{"embedding":"AACAPwAAAD8=","index":0,"object":"embedding"}],"model":"gemini-embedding-001","object":"list","usage":{"prompt_tokens":1,"total_tokens":1}}`},
		{"gemini batch to openai", llmapi.GenerateContent, llmapi.ChatCompletions, "/v1beta/models/text-embedding-3-small:batchEmbedContents",
			`{"requests":[{"model":"models/x","content":{"parts":[{"text":"a"}]},"output_dimensionality":3},{"content":{"parts":[{"text":"b"}]},"outputDimensionality":3}]}`,
			"/v1/embeddings", `{"dimensions":3,"encoding_format":"float","input":["a","b"],"model":"text-embedding-3-small"}`,
			`{"object":"list","data":[{"object":"embedding","index":1,"embedding":[2,2,2]},{"object":"embedding","index":0,"embedding":[1,1,1]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":2,"total_tokens":2}}`,
			`{"embeddings":[{"values":[1,1,1]},{"values":[2,2,2]}]}`},
		{"gemini single to openai", llmapi.GenerateContent, llmapi.ChatCompletions, "/v1beta/models/text-embedding-3-small:embedContent",
			`{"content":{"parts":[{"text":"a"}]},"taskType":"RETRIEVAL_QUERY"}`,
			"/v1/embeddings", `{"encoding_format":"float","input":["a"],"model":"text-embedding-3-small"}`,
			`{"data":[{"index":0,"embedding":[1]}],"usage":{"prompt_tokens":1}}`,
			`{"embedding":{"values":[1]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := "gemini-embedding-001"
			if tc.provider == llmapi.ChatCompletions {
				model = "text-embedding-3-small"
			}
			p, err := NewPlanPath(tc.client, tc.provider, tc.path, "", []byte(tc.body), model)
			if err != nil {
				t.Fatal(err)
			}
			if p.Path != tc.wantPath || string(p.Body) != tc.wantBody || p.Stream {
				t.Fatalf("request %s %s", p.Path, p.Body)
			}
			var rec recorder
			if err := p.Respond(200, http.Header{}, strings.NewReader(tc.answer), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.body.String() != tc.wantAnswer {
				t.Fatalf("answer %s\nwant   %s", rec.body.Bytes(), tc.wantAnswer)
			}
		})
	}
	if _, err := NewPlanPath(llmapi.ChatCompletions, llmapi.Messages, "/v1/embeddings", "", []byte(`{"input":"x"}`), "claude"); err == nil ||
		!strings.Contains(err.Error(), `"claude" is served by the Anthropic API, which has no embeddings`) {
		t.Fatalf("anthropic embeddings: %v", err)
	}
	p, _ := NewPlanPath(llmapi.ChatCompletions, llmapi.GenerateContent, "/v1/embeddings", "", []byte(`{"input":["a","b"]}`), "g")
	var rec recorder
	if err := p.Respond(200, http.Header{}, bytes.NewReader([]byte(`{"embeddings":[{"values":[1]}]}`)), &rec); err == nil {
		t.Fatal("one vector for two inputs must fail")
	}
}

// FuzzEmbed feeds random bodies to both embeddings request decoders and
// random provider answers to both answer decoders: no panic, and valid
// JSON out whenever no error is returned.
func FuzzEmbed(f *testing.F) {
	f.Add(uint8(0), []byte(`{"input":["a","b"],"dimensions":2,"encoding_format":"base64"}`), []byte(`{"embeddings":[{"values":[1]},{"values":[2]}]}`))
	f.Add(uint8(1), []byte(`{"requests":[{"content":{"parts":[{"text":"a"}]}}]}`), []byte(`{"data":[{"index":0,"embedding":[1]}]}`))
	f.Add(uint8(2), []byte(`{"content":{"parts":[{"text":"a"}]}}`), []byte(`{"data":[{"index":3,"embedding":[1]}]}`))
	f.Fuzz(func(t *testing.T, kind uint8, body, answer []byte) {
		client, provider, path := llmapi.ChatCompletions, llmapi.GenerateContent, "/v1/embeddings"
		switch kind % 3 {
		case 1:
			client, provider, path = llmapi.GenerateContent, llmapi.ChatCompletions, "/v1beta/models/m:batchEmbedContents"
		case 2:
			client, provider, path = llmapi.GenerateContent, llmapi.ChatCompletions, "/v1beta/models/m:embedContent"
		}
		p, err := NewPlanPath(client, provider, path, "", body, "m")
		if err != nil {
			return
		}
		if !jsonValid(p.Body) {
			t.Fatalf("invalid request JSON: %s", p.Body)
		}
		var rec recorder
		if p.Respond(200, http.Header{}, bytes.NewReader(answer), &rec) == nil && !jsonValid(rec.body.Bytes()) {
			t.Fatalf("invalid answer JSON: %s", rec.body.Bytes())
		}
	})
}
