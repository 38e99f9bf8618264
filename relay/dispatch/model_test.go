package dispatch

import (
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto"
)

// TestRoutedModel: the relay routes on the model the edge judged, and a
// body that names another model (however it is spelt) never reaches a
// provider. Edges of protocol version 1 send no model: the body decides.
func TestRoutedModel(t *testing.T) {
	r := newRig(t, rigOptions{keys: []string{"k1"}})
	const path = "/v1/chat/completions"
	tests := []struct {
		name      string
		model     string // what the edge judged
		noModel   bool   // a version-1 edge
		body      string
		wantModel string // what reaches the provider; empty: refused with 400
	}{
		{"agrees", "gpt-4o-mini", false, `{"model":"gpt-4o-mini","messages":[]}`, "gpt-4o-mini"},
		{"disagrees", "gpt-4o-mini", false, `{"model":"gpt-4o","messages":[]}`, ""},
		{"leading whitespace the edge missed", "", false, " \n{\"model\":\"gpt-4o\",\"messages\":[]}", ""},
		{"other case", "gpt-4o-mini", false, `{"model":"gpt-4o","Model":"gpt-4o-mini","messages":[]}`, ""},
		{"named twice", "gpt-4o-mini", false, `{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}`, ""},
		{"model the edge saw, body not JSON", "gpt-4o", false, `model=gpt-4o`, ""},
		{"version 1 edge", "", true, `{"model":"gpt-4o","messages":[]}`, "gpt-4o"},
		{"version 1 edge, ambiguous body", "", true, `{"model":"gpt-4o-mini","model":"gpt-4o","messages":[]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.fake.Reset()
			res := r.send(&proto.RequestHeader{ID: "t", Family: "openai", Method: "POST", Path: path,
				Header: http.Header{"Content-Type": {"application/json"}}, BodyLen: int64(len(tt.body)),
				Model: tt.model, NoModel: tt.noModel}, tt.body)
			got := r.fake.Requests()
			if tt.wantModel == "" {
				if res.end.Code != proto.CodeBadRequest || res.dispatched || len(got) != 0 {
					t.Fatalf("end %v, dispatched %v, %d upstream requests; want a bad request, never sent", res.end, res.dispatched, len(got))
				}
				if !strings.Contains(res.end.Message, "model") {
					t.Errorf("message %q does not say what is wrong", res.end.Message)
				}
				return
			}
			if res.status != http.StatusOK || len(got) != 1 || got[0].Model != tt.wantModel {
				t.Fatalf("status %d, end %v, upstream %+v; want %s served", res.status, res.end, got, tt.wantModel)
			}
		})
	}
}
