package dispatch

import (
	"bytes"
	"encoding/json"
)

// annotate appends note to the message of a provider's JSON error body
// ({"error":{"message":…}} in all three families), so the error the SDK
// raises says what the relay tried. A body of another shape is returned
// unchanged.
func annotate(body []byte, note string) []byte {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return body
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(top["error"], &inner) != nil {
		return body
	}
	var msg string
	if json.Unmarshal(inner["message"], &msg) != nil {
		return body
	}
	inner["message"], _ = json.Marshal(msg + note)
	top["error"], _ = json.Marshal(inner)
	out, err := json.Marshal(top)
	if err != nil {
		return body
	}
	if bytes.HasSuffix(body, []byte("\n")) {
		out = append(out, '\n')
	}
	return out
}
