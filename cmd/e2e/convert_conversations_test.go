package e2e

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestConvertPreviousResponseID: an agent on the OpenAI SDK's Responses
// API talks to Claude in two turns linked by previous_response_id; the
// relay keeps the conversation, so Claude gets the whole history on the
// second turn. GET /v1/responses/{id} returns the stored response, DELETE
// removes it, and the id then gives the Responses API's 404.
func TestConvertPreviousResponseID(t *testing.T) {
	const storedKey = "strait-stored-key-0123456789"
	addSecret(storedKey, "client key stored-app")
	s := newStack(t, stackOptions{
		relayTLSEdit: func(f *relaycmd.File) {
			f.Conversations = relaycmd.ConversationsFile{Path: filepath.Join(t.TempDir(), "conversations.db"), TTL: time.Hour}
		},
		edgeEdit: func(f *edgecmd.File) {
			f.ClientKeys = append(f.ClientKeys, edgecmd.ClientKey{Name: "stored-app", Key: storedKey, Endpoints: []string{"stored"}})
		},
	})
	ctx := testCtx(t, 20*time.Second)
	c := s.openai(option.WithAPIKey(storedKey))
	first, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("My name is Ada.")}})
	if err != nil {
		t.Fatal(err)
	}
	if first.OutputText() != fakeprovider.Text(8) || !strings.HasPrefix(first.ID, "resp_") {
		t.Fatalf("turn 1: %q %s", first.OutputText(), first.ID)
	}

	// Turn 2 streams, as agents do.
	stream := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("What is my name?")}})
	var second responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			second = ev.Response
		}
	}
	if err := stream.Err(); err != nil || second.ID == "" {
		t.Fatalf("turn 2: %v %+v", err, second)
	}
	up := string(lastRequest(t, s).Body)
	if !strings.Contains(up, `"My name is Ada."`) || !strings.Contains(up, `"text":"`+fakeprovider.Text(8)+`"`) ||
		!strings.Contains(up, `"What is my name?"`) || strings.Contains(up, "previous_response_id") {
		t.Fatalf("turn 2 upstream lacks the history: %s", up)
	}

	got, err := c.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	if err != nil || got.ID != first.ID || got.OutputText() != fakeprovider.Text(8) {
		t.Fatalf("GET: %v %+v", err, got)
	}
	if err := c.Responses.Delete(ctx, first.ID); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	_, err = c.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	wantOpenAIError(t, err, 404, "No response found")
	_, err = c.Responses.New(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5", PreviousResponseID: openai.String(first.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Still there?")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "not found") {
		t.Fatalf("previous_response_id after DELETE: %v", err)
	}

	// Turn 3 builds on turn 2, which is still stored.
	third, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5", PreviousResponseID: openai.String(second.ID),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("And again?")}})
	if err != nil || third.OutputText() != fakeprovider.Text(8) {
		t.Fatalf("turn 3: %v", err)
	}
	if up := string(lastRequest(t, s).Body); strings.Count(up, `"role":"user"`) != 3 {
		t.Fatalf("turn 3 upstream: %s", up)
	}
}
