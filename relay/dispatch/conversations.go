package dispatch

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convert"
	"github.com/strait/strait/relay/convstore"
)

// Stored Responses conversations for clients converted to a provider of
// another API: the relay resolves previous_response_id from its own store,
// records each finished response, and answers GET and DELETE
// /v1/responses/{id} for the ids it made. Passthrough to OpenAI stores
// nothing here: OpenAI keeps those itself.

// keeper records one converted Responses exchange when it finishes.
type keeper struct {
	store  convstore.Backend
	items  []json.RawMessage // the input, history included
	stream bool
}

// resolvePrevious rewrites a Responses request for conversion: the stored
// conversation replaces previous_response_id, and a keeper is returned when
// the answer is to be stored. A missing or expired id ends the exchange
// with a 404, as OpenAI answers.
func resolvePrevious(store convstore.Backend, body []byte) ([]byte, *keeper, *proto.End) {
	prev, keep := convert.PreviousResponse(body)
	if store == nil {
		return body, nil, nil // convert refuses previous_response_id clearly
	}
	if prev != "" {
		raw, err := store.Get(prev)
		if err != nil && !errors.Is(err, convstore.ErrNotFound) {
			return nil, nil, storeDown(err)
		}
		var conv convert.Conversation
		if err != nil || json.Unmarshal(raw, &conv) != nil {
			return nil, nil, &proto.End{Code: proto.CodeNoRoute, Message: "Previous response with id '" + prev +
				"' not found (it expired, was deleted, or was never stored)."}
		}
		if body, err = convert.WithHistory(body, conv.Items); err != nil {
			return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: err.Error()}
		}
	}
	if !keep {
		return body, nil, nil
	}
	items, err := convert.InputItems(body)
	if err != nil {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: err.Error()}
	}
	var stream struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &stream)
	return body, &keeper{store: store, items: items, stream: stream.Stream}, nil
}

// keepWriter stores the conversation when the client's final response
// passes, before it is written on: a client that sends its next turn the
// moment it sees the end finds the record there.
type keepWriter struct {
	convert.ResponseWriter
	k  *keeper
	ok bool // the status was 2xx
}

func (w *keepWriter) WriteHeader(status int, h http.Header) error {
	w.ok = status >= 200 && status < 300
	return w.ResponseWriter.WriteHeader(status, h)
}

func (w *keepWriter) Write(p []byte) error {
	if w.ok {
		if resp, id, output, ok := convert.FinalResponse(p, w.k.stream); ok {
			rec := convert.Conversation{Items: append(append([]json.RawMessage{}, w.k.items...), output...), Response: resp}
			if b, err := json.Marshal(rec); err == nil {
				_ = w.k.store.Put(id, b) // over budget: the next turn gets a 404, as after expiry
			}
		}
	}
	return w.ResponseWriter.Write(p)
}

// storedResponseID is the id of GET or DELETE /v1/responses/{id}.
func storedResponseID(h *proto.RequestHeader) (string, bool) {
	id, ok := strings.CutPrefix(h.Path, "/v1/responses/")
	if !ok || h.Family != "openai" || (h.Method != http.MethodGet && h.Method != http.MethodDelete) ||
		id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// serveStored answers GET or DELETE /v1/responses/{id} from the store. It
// returns false, having written nothing, for an id the store lacks when
// the relay passes stored endpoints to OpenAI: the id may be OpenAI's.
func (x *exchange) serveStored(store convstore.Backend, h *proto.RequestHeader, id string, passthrough bool) bool {
	raw, err := store.Get(id)
	if err != nil && !errors.Is(err, convstore.ErrNotFound) {
		x.finish(*storeDown(err))
		return true
	}
	if err != nil && passthrough {
		return false
	}
	var conv convert.Conversation
	if err != nil || json.Unmarshal(raw, &conv) != nil {
		e := &convert.Error{Kind: convert.ErrNotFound, Message: "No response found with id '" + id + "'."}
		x.respondJSON(http.StatusNotFound, e.Body(llmapi.Responses))
		return true
	}
	if h.Method == http.MethodDelete {
		_, _ = store.Delete(id)
		b, _ := json.Marshal(map[string]any{"id": id, "object": "response", "deleted": true})
		x.respondJSON(http.StatusOK, b)
		return true
	}
	x.respondJSON(http.StatusOK, conv.Response)
	return true
}

// storeDown ends an exchange whose conversation store could not be read
// (Redis away): an error of the relay's own, never the 404 that would tell
// the client its conversation is gone.
func storeDown(err error) *proto.End {
	return &proto.End{Code: proto.CodeUpstreamUnreachable, Message: "the conversation store is unavailable: " + err.Error()}
}
