package dispatch

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/upstream"
)

// Model listings (GET /v1/models for OpenAI and Anthropic, GET
// /v1beta/models for Gemini) list what the routing table serves: the
// family provider's own list, plus the table's exact names and aliases
// that it does not already contain. With strict_models, or without a
// provider of the family, the list is the table's alone.

// isListing reports a request for the family's model list.
func isListing(h *proto.RequestHeader) bool {
	if h.Method != http.MethodGet || h.Provider != "" {
		return false
	}
	if h.Family == string(llmapi.Gemini) {
		return h.Path == "/v1beta/models" || h.Path == "/v1/models"
	}
	return h.Path == "/v1/models"
}

// entry renders one served model in family's listing shape.
func entry(family string, t upstream.Target) any {
	switch family {
	case string(llmapi.Anthropic):
		return map[string]any{"type": "model", "id": t.Model, "display_name": t.Model, "created_at": "1970-01-01T00:00:00Z"}
	case string(llmapi.Gemini):
		return map[string]any{"name": "models/" + t.Model, "displayName": t.Model,
			"supportedGenerationMethods": []string{"generateContent", "streamGenerateContent", "countTokens"}}
	}
	return map[string]any{"id": t.Model, "object": "model", "created": 0, "owned_by": t.Provider.Name}
}

// entryID is the id of a listing entry ("models/x" counts as "x").
func entryID(raw json.RawMessage) string {
	var v struct{ ID, Name string }
	_ = json.Unmarshal(raw, &v)
	if v.ID != "" {
		return v.ID
	}
	return strings.TrimPrefix(v.Name, "models/")
}

// listing builds family's listing from base (the provider's, or nil) and
// the table's models; base comes back unchanged if it is not a listing.
func listing(family string, base []byte, served []upstream.Target) []byte {
	top := map[string]json.RawMessage{}
	if base != nil && json.Unmarshal(base, &top) != nil {
		return base
	}
	key := llmapi.Family(family).ListKey()
	var items []json.RawMessage
	if raw, ok := top[key]; ok && json.Unmarshal(raw, &items) != nil {
		return base
	}
	have := map[string]bool{}
	for _, it := range items {
		have[entryID(it)] = true
	}
	for _, t := range served {
		if !have[t.Model] {
			have[t.Model] = true
			b, _ := json.Marshal(entry(family, t))
			items = append(items, b)
		}
	}
	top[key], _ = json.Marshal(items)
	switch family {
	case string(llmapi.OpenAI):
		top["object"] = json.RawMessage(`"list"`)
	case string(llmapi.Anthropic):
		if base == nil {
			top["has_more"] = json.RawMessage("false")
		}
	}
	out, _ := json.Marshal(top)
	return out
}

// serveListing answers a listing from the table alone.
func (x *exchange) serveListing(family string, served []upstream.Target) {
	x.respondJSON(http.StatusOK, listing(family, nil, served))
}

// respondJSON answers with the relay's own JSON body; nothing went upstream.
func (x *exchange) respondJSON(status int, body []byte) {
	h := http.Header{"Content-Type": {"application/json"}}
	if err := x.w.WriteResponse(&proto.ResponseHeader{Status: status, Header: h}); err != nil {
		return
	}
	if _, err := x.w.Write(body); err != nil {
		return
	}
	x.stats.Status, x.stats.BytesDown = status, int64(len(body))
	x.finish(proto.End{})
}

// mergeListing replaces a provider's successful listing body with the
// merged one; it reads the whole (small) body first.
func mergeListing(a *answer, family string, served []upstream.Target) {
	if a.resp.StatusCode != http.StatusOK {
		return
	}
	b, err := io.ReadAll(io.LimitReader(io.MultiReader(strings.NewReader(string(a.first)), a.resp.Body), maxErrorBody*8))
	if err != nil {
		// Hand on what was read, then the error: the copy reports it.
		a.first = nil
		a.resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(strings.NewReader(string(b)), errReader{err}), a.resp.Body}
		return
	}
	merged := listing(family, b, served)
	a.first = nil
	a.resp.Body = struct {
		io.Reader
		io.Closer
	}{strings.NewReader(string(merged)), a.resp.Body}
	a.resp.Header.Del("Content-Length")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
