package doctor

import (
	"bufio"
	"context"
	"fmt"
	"github.com/strait/strait/proto/llmapi"
	"io"
	"net/http"
	"strings"
	"time"
)

// ProviderCheck is one tiny streamed request through the edge.
type ProviderCheck struct {
	Family string `json:"family"`
	Model  string `json:"model"`
	OK     bool   `json:"ok"`
	// FirstTokenMillis is the time from sending to the first streamed
	// event: the edge, the tunnel, the relay and the provider together.
	FirstTokenMillis float64 `json:"first_token_ms,omitempty"`
	Detail           string  `json:"detail,omitempty"`
}

// DefaultModels are the models FirstTokens asks, by API family.
var DefaultModels = map[string]string{
	string(llmapi.OpenAI): "gpt-4o-mini", string(llmapi.Anthropic): "claude-3-5-haiku-latest",
	string(llmapi.Gemini): "gemini-2.0-flash",
}

// FirstTokens sends one tiny streamed request per family (at most one
// output token) to the edge at baseURL with a client key, and times the
// first event of each answer. It costs a few tokens at each provider, so
// it runs only when asked.
func FirstTokens(ctx context.Context, client *http.Client, baseURL, key string, models map[string]string) []ProviderCheck {
	var out []ProviderCheck
	for _, f := range llmapi.Families {
		fam := string(f)
		model, ok := models[fam]
		if !ok {
			continue
		}
		out = append(out, firstToken(ctx, client, strings.TrimRight(baseURL, "/"), key, fam, model))
	}
	return out
}

func firstToken(ctx context.Context, client *http.Client, base, key, fam, model string) ProviderCheck {
	pc := ProviderCheck{Family: fam, Model: model}
	var url, body string
	h := http.Header{"Content-Type": {"application/json"}}
	llmapi.SetKey(h, llmapi.Family(fam), key)
	switch llmapi.Family(fam) {
	case llmapi.OpenAI:
		url = base + "/v1/chat/completions"
		body = fmt.Sprintf(`{"model":%q,"stream":true,"max_tokens":1,"messages":[{"role":"user","content":"Say OK"}]}`, model)
	case llmapi.Anthropic:
		url = base + "/v1/messages"
		body = fmt.Sprintf(`{"model":%q,"stream":true,"max_tokens":1,"messages":[{"role":"user","content":"Say OK"}]}`, model)
		h.Set("Anthropic-Version", "2023-06-01")
	case llmapi.Gemini:
		url = base + "/v1beta/models/" + model + ":streamGenerateContent?alt=sse"
		body = `{"contents":[{"role":"user","parts":[{"text":"Say OK"}]}],"generationConfig":{"maxOutputTokens":1}}`
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		pc.Detail = err.Error()
		return pc
	}
	req.Header = h
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		pc.Detail = err.Error()
		return pc
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		pc.Detail = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
		return pc
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			pc.OK, pc.FirstTokenMillis = true, ms(time.Since(start))
			return pc
		}
	}
	pc.Detail = "the stream ended without an event"
	return pc
}
