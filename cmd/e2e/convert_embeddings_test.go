package e2e

import (
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"google.golang.org/genai"
)

// TestConvertEmbeddings: the OpenAI SDK embeds with a Gemini model (a batch
// with dimensions, usage reported) and the Gemini SDK with an OpenAI model.
func TestConvertEmbeddings(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	resp, err := s.openai().Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "gemini-embedding-001", Dimensions: openai.Int(8),
		Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"hello", "world"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 2 || len(resp.Data[0].Embedding) != 8 || resp.Data[1].Index != 1 || resp.Usage.PromptTokens == 0 {
		t.Fatalf("openai → gemini: %d vectors, usage %+v", len(resp.Data), resp.Usage)
	}
	checkUpstream(t, lastRequest(t, s), "gemini", "/v1beta/models/gemini-embedding-001:batchEmbedContents")

	g, err := s.gemini(t).Models.EmbedContent(ctx, "text-embedding-3-small",
		[]*genai.Content{genai.NewContentFromText("hello", genai.RoleUser), genai.NewContentFromText("world", genai.RoleUser)},
		&genai.EmbedContentConfig{OutputDimensionality: genai.Ptr[int32](16)})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Embeddings) != 2 || len(g.Embeddings[1].Values) != 16 {
		t.Fatalf("gemini → openai: %+v", g.Embeddings)
	}
	checkUpstream(t, lastRequest(t, s), "openai", "/v1/embeddings")
}
