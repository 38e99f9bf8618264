package dispatch

import (
	"net/http"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convert"
	"go.uber.org/zap"
)

// refuseEndpoint answers, in the client's API format, a request for an
// endpoint class the relay's config does not serve. The edge already
// refuses such classes per client key; this is the second line, for an
// edge that is misconfigured or older: account-level endpoints (files,
// batches, fine-tuning, stored answers) reach what every client of the
// shared provider key shares, so they are served only where the relay's
// operator asked for them too.
func (x *exchange) refuseEndpoint(h *proto.RequestHeader, class string) {
	d, ok := llmapi.ClientDialect(llmapi.Family(h.Family), h.Method, h.Path)
	if !ok {
		d = llmapi.Family(h.Family).Dialect()
	}
	e := &convert.Error{Kind: convert.ErrPermission, Message: "Strait relay: " + class + " endpoints are not served (relay config endpoints)"}
	if class == "" {
		e = &convert.Error{Kind: convert.ErrNotFound, Message: "Strait relay: " + h.Method + " " + h.Path + " is not an endpoint it serves"}
	}
	x.log.Info("endpoint refused", zap.String("class", class))
	status := http.StatusForbidden
	if e.Kind == convert.ErrNotFound {
		status = http.StatusNotFound
	}
	x.respondJSON(status, e.Body(d))
}
