package convert

import (
	"bytes"
	"encoding/json"
)

// Helpers for the relay's own store of Responses conversations (package
// convstore), used when a Responses client is converted for a provider of
// another API and so has no OpenAI account to keep its previous responses.

// Conversation is one stored conversation: every input and output item so
// far, and the response object the client was sent.
type Conversation struct {
	Items    []json.RawMessage `json:"items"`
	Response json.RawMessage   `json:"response"`
}

// PreviousResponse reads a Responses request's previous_response_id and
// whether it asks to be stored (the API's default).
func PreviousResponse(body []byte) (id string, store bool) {
	var v struct {
		PreviousResponseID string `json:"previous_response_id"`
		Store              *bool  `json:"store"`
	}
	_ = json.Unmarshal(body, &v)
	return v.PreviousResponseID, v.Store == nil || *v.Store
}

// WithHistory returns a Responses request with history before its own input
// and no previous_response_id: the request the client would have sent
// without a stored conversation.
func WithHistory(body []byte, history []json.RawMessage) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	items, err := InputItems(body)
	if err != nil {
		return nil, err
	}
	fields["input"] = mustJSON(append(append([]json.RawMessage{}, history...), items...))
	delete(fields, "previous_response_id")
	return mustJSON(fields), nil
}

// InputItems is a Responses request's input as items: a string is one user
// message.
func InputItems(body []byte) ([]json.RawMessage, error) {
	var v struct {
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	var s string
	if json.Unmarshal(v.Input, &s) == nil {
		return []json.RawMessage{mustJSON(obj{"type": "message", "role": "user", "content": s})}, nil
	}
	var items []json.RawMessage
	if len(v.Input) > 0 && json.Unmarshal(v.Input, &items) != nil {
		return nil, invalid("input must be a string or an array of items")
	}
	return items, nil
}

// FinalResponse finds the finished response object in what a Responses
// client is sent: the whole body, or the data of a stream's
// response.completed / response.incomplete event. id and output are read
// from it for the store.
func FinalResponse(p []byte, stream bool) (resp json.RawMessage, id string, output []json.RawMessage, ok bool) {
	if stream {
		if !bytes.HasPrefix(p, []byte("event: response.completed\n")) && !bytes.HasPrefix(p, []byte("event: response.incomplete\n")) {
			return nil, "", nil, false
		}
		_, data, _ := bytes.Cut(p, []byte("\ndata: "))
		var ev struct {
			Response json.RawMessage `json:"response"`
		}
		if json.Unmarshal(bytes.TrimSpace(data), &ev) != nil {
			return nil, "", nil, false
		}
		p = ev.Response
	}
	var r struct {
		ID     string            `json:"id"`
		Object string            `json:"object"`
		Output []json.RawMessage `json:"output"`
	}
	if json.Unmarshal(p, &r) != nil || r.Object != "response" || r.ID == "" {
		return nil, "", nil, false
	}
	return p, r.ID, r.Output, true
}
