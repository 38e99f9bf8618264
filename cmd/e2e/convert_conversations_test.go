package e2e

import (
	"context"
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
	"github.com/strait/strait/scripts/redistest"
)

// TestConvertPreviousResponseID: an agent on the OpenAI SDK's Responses
// API talks to Claude in two turns linked by previous_response_id; the
// relay keeps the conversation, so Claude gets the whole history on the
// second turn. GET /v1/responses/{id} returns the stored response, DELETE
// removes it, and the id then gives the Responses API's 404.
func TestConvertPreviousResponseID(t *testing.T) {
	s := conversationStack(t, relaycmd.ConversationsFile{Path: filepath.Join(t.TempDir(), "conversations.db"), TTL: time.Hour})
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
	second := nextTurnStreamed(ctx, t, c, first.ID, "What is my name?")
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

const storedKey = "strait-stored-key-0123456789"

// conversationStack is a stack whose relay keeps conversations in store,
// with a client key allowed the stored endpoints (GET and DELETE
// /v1/responses/{id}).
func conversationStack(t *testing.T, store relaycmd.ConversationsFile) *stack {
	t.Helper()
	addSecret(storedKey, "client key stored-app")
	return newStack(t, stackOptions{
		relayTLSEdit: func(f *relaycmd.File) { f.Conversations = store },
		edgeEdit: func(f *edgecmd.File) {
			f.ClientKeys = append(f.ClientKeys, edgecmd.ClientKey{Name: "stored-app", Key: storedKey, Endpoints: []string{"stored"}})
		},
	})
}

// TestConvertPreviousResponseIDRedis: two deployments (edge and relay
// each) keep conversations in one real Redis. A conversation begun
// through the first continues through the second, streamed, with the
// whole history reaching Claude; either relay answers GET and DELETE for
// the other's ids; a relay with another key prefix sees none of them.
func TestConvertPreviousResponseIDRedis(t *testing.T) {
	srv := redistest.Start(t)
	shared := relaycmd.ConversationsFile{Redis: srv.URL(), TTL: time.Hour}
	a, b := conversationStack(t, shared), conversationStack(t, shared)
	other := conversationStack(t, relaycmd.ConversationsFile{Redis: srv.URL(), RedisPrefix: "tenant-b:"})
	ctx := testCtx(t, 30*time.Second)
	ca, cb := a.openai(option.WithAPIKey(storedKey)), b.openai(option.WithAPIKey(storedKey))
	first, err := ca.Responses.New(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("My name is Ada.")}})
	if err != nil {
		t.Fatal(err)
	}
	second := nextTurnStreamed(ctx, t, cb, first.ID, "What is my name?")
	if up := string(lastRequest(t, b).Body); !strings.Contains(up, `"My name is Ada."`) || !strings.Contains(up, `"What is my name?"`) {
		t.Fatalf("turn 2 upstream lacks the history: %s", up)
	}
	if got, err := ca.Responses.Get(ctx, second.ID, responses.ResponseGetParams{}); err != nil || got.ID != second.ID {
		t.Fatalf("GET through the first relay of the second's id: %v", err)
	}
	_, err = other.openai(option.WithAPIKey(storedKey)).Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	wantOpenAIError(t, err, 404, "No response found")
	if err := cb.Responses.Delete(ctx, first.ID); err != nil {
		t.Fatalf("DELETE through the second relay: %v", err)
	}
	_, err = ca.Responses.Get(ctx, first.ID, responses.ResponseGetParams{})
	wantOpenAIError(t, err, 404, "No response found")
}

// nextTurnStreamed streams the turn after previous to Claude and returns
// the completed response.
func nextTurnStreamed(ctx context.Context, t *testing.T, c *openai.Client, previous, text string) responses.Response {
	t.Helper()
	stream := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: "claude-sonnet-4-5", PreviousResponseID: openai.String(previous),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String(text)}})
	var done responses.Response
	for stream.Next() {
		if ev := stream.Current(); ev.Type == "response.completed" {
			done = ev.Response
		}
	}
	if err := stream.Err(); err != nil || done.ID == "" {
		t.Fatalf("streamed turn after %s: %v %+v", previous, err, done)
	}
	return done
}
