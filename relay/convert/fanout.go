package convert

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/strait/strait/proto/llmapi"
)

// Fan-out: a Chat Completions client asks for n > 1 choices from a model
// whose provider makes one per call (Anthropic, Gemini, the Responses
// API). The relay makes n calls of one choice each and merges their
// answers, already converted to Chat Completions, into one: choice i is
// call i's, and the usage is the sum of the n calls, each counted once.
// These functions are the format's part; the relay's dispatch runs the
// calls.

// ChatChoices is the n of a Chat Completions request body: 1 when it asks
// for one choice (or the body cannot be read; conversion then reports it).
func ChatChoices(body []byte) int {
	var v struct {
		N *int `json:"n"`
	}
	if json.Unmarshal(body, &v) != nil || v.N == nil || *v.N < 1 {
		return 1
	}
	return *v.N
}

// OneChoice is body asking for one choice: each call of a fan-out sends
// it. Every other byte stays as the client sent it, stream_options
// included, so each call's chunks already look as the client asked.
func OneChoice(body []byte) ([]byte, error) {
	start, end, ok := llmapi.MemberSpan(body, "n")
	if !ok {
		return nil, invalid("request body has no n to fan out")
	}
	out := make([]byte, 0, len(body))
	return append(append(append(out, body[:start]...), '1'), body[end:]...), nil
}

// setMember replaces the value of the top-level member name of a JSON
// object, leaving every other byte in place; without the member, obj is
// unchanged.
func setMember(obj []byte, name string, value []byte) []byte {
	start, end, ok := llmapi.MemberSpan(obj, name)
	if !ok {
		return obj
	}
	out := make([]byte, 0, len(obj)-(end-start)+len(value))
	return append(append(append(out, obj[:start]...), value...), obj[end:]...)
}

// chatEnvelope is what a merge reads of a Chat Completions body or chunk.
type chatEnvelope struct {
	ID      string            `json:"id"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []json.RawMessage `json:"choices"`
	Usage   *llmapi.ChatUsage `json:"usage"`
	Error   json.RawMessage   `json:"error"`
}

// reindex sets the index of each choice to i.
func reindex(choices []json.RawMessage, i int) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(choices))
	for k, c := range choices {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(c, &m); err != nil {
			return nil, err
		}
		m["index"] = json.RawMessage(fmt.Appendf(nil, "%d", i))
		out[k] = mustJSON(m)
	}
	return out, nil
}

// MergeChatResponses merges the whole (non-streaming) Chat Completions
// bodies of a fan-out, call i's first: its id and envelope, every call's
// choice at its own index, and the usage summed.
func MergeChatResponses(bodies [][]byte) ([]byte, error) {
	if len(bodies) == 0 {
		return nil, fmt.Errorf("convert: no answers to merge")
	}
	var choices []json.RawMessage
	var sum llmapi.Usage
	for i, b := range bodies {
		var env chatEnvelope
		if err := json.Unmarshal(b, &env); err != nil {
			return nil, errBadEvent(err)
		}
		c, err := reindex(env.Choices, i)
		if err != nil {
			return nil, errBadEvent(err)
		}
		choices = append(choices, c...)
		if env.Usage != nil {
			sum.Add(env.Usage.Normal())
		}
	}
	out := setMember(bodies[0], "choices", mustJSON(choices))
	return setMember(out, "usage", mustJSON(llmapi.ChatUsageOf(sum))), nil
}

// ChatStreamMerge merges the Chat Completions streams of a fan-out, one
// event at a time as they arrive from the n calls.
type ChatStreamMerge struct {
	includeUsage bool
	id, model    string
	created      int64
	usage        llmapi.Usage
}

// NewChatStreamMerge merges the streams of a fan-out of the Chat
// Completions request body.
func NewChatStreamMerge(body []byte) *ChatStreamMerge {
	var v struct {
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &v)
	return &ChatStreamMerge{includeUsage: v.StreamOptions.IncludeUsage}
}

// Event takes one SSE event (as framed, blank line included) of call i
// and returns what the client gets for it: the chunk with its choices at
// index i and the id of the whole answer (the first chunk's), nothing for
// a call's [DONE] or its usage chunk (End sends the sum), and anything
// else (keep-alives) as it is. failed reports an in-band error event,
// passed on as it is: the answer ends with it.
func (m *ChatStreamMerge) Event(i int, ev []byte) (out []byte, failed bool, err error) {
	data := llmapi.EventData(ev)
	if len(data) == 0 || data[0] != '{' {
		if string(data) == "[DONE]" {
			return nil, false, nil
		}
		return ev, false, nil
	}
	var env chatEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, false, errBadEvent(err)
	}
	if len(env.Error) > 0 {
		return ev, true, nil
	}
	if env.Usage != nil {
		m.usage.Add(env.Usage.Normal())
		if len(env.Choices) == 0 {
			return nil, false, nil
		}
		data = setMember(data, "usage", []byte("null"))
	}
	if m.id == "" {
		m.id, m.model, m.created = env.ID, env.Model, env.Created
	}
	choices, err := reindex(env.Choices, i)
	if err != nil {
		return nil, false, errBadEvent(err)
	}
	data = setMember(setMember(data, "id", mustJSON(m.id)), "choices", mustJSON(choices))
	return append(append([]byte("data: "), data...), "\n\n"...), false, nil
}

// End is the end of the merged stream, once every call has ended: the
// summed usage chunk when the client asked for usage, then [DONE].
func (m *ChatStreamMerge) End() []byte {
	var b bytes.Buffer
	if m.includeUsage {
		b.Write(sseData("", obj{"id": m.id, "object": "chat.completion.chunk", "created": m.created, "model": m.model,
			"choices": []any{}, "usage": llmapi.ChatUsageOf(m.usage)}))
	}
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}
