package dispatch

import (
	"errors"
	"fmt"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/upstream"
)

// routedModel is the model the relay routes on: the one the edge judged its
// allow-list and prices on (the header's Model), after checking that the
// body names the same model when read by the same parser (proto/llmapi).
// A body that disagrees is refused with a 400 in the client's format: a
// request the edge judged as one model must never reach another. Headers
// from edges of protocol version 1 carry no model; the body decides then.
func routedModel(h *proto.RequestHeader, in *upstream.Inbound) (string, *proto.End) {
	if errors.Is(in.ModelErr, llmapi.ErrBadModel) {
		return "", &proto.End{Code: proto.CodeBadRequest, Message: in.ModelErr.Error()}
	}
	if h.NoModel {
		return in.Model, nil
	}
	if in.Model != h.Model {
		return "", &proto.End{Code: proto.CodeBadRequest, Message: fmt.Sprintf(
			"the request names model %q where the edge read %q; refused", llmapi.Truncate(in.Model), llmapi.Truncate(h.Model))}
	}
	return h.Model, nil
}
