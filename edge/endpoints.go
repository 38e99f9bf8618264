package edge

import (
	"strconv"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/proto/llmapi"
)

// permitEndpoint refuses endpoints the client key may not use. Inference
// (generate, embed, count tokens, list models) is open to every key; the
// account-level endpoints (files, batches, fine-tuning, stored responses,
// assistants, DELETEs) reach what the shared provider account holds for
// every client, so a key gets them only when its config names their class.
// A known class the key lacks is 403 permission_error; a path that belongs
// to no class is 404, as for a path Strait does not serve (only
// endpoints: [all] lets those through).
func (e *Edge) permitEndpoint(c *call) *rejection {
	class := llmapi.EndpointClass(string(c.route.Family), c.r.Method, c.route.Path)
	if llmapi.AllowsEndpoint(c.client.Endpoints, class) {
		return nil
	}
	what := c.r.Method + " " + c.route.Path
	if class == "" {
		return &rejection{reason: "endpoint_not_allowed", err: &apierr.Error{Kind: apierr.NotFound,
			Message: "Strait does not serve " + what + " for this key (not an inference endpoint)"}}
	}
	return &rejection{reason: "endpoint_not_allowed", err: &apierr.Error{Kind: apierr.PermissionDenied, Code: "endpoint_not_allowed",
		Message: "Strait client key " + strconv.Quote(c.client.Name) + " may not use " + class + " endpoints (" + what +
			"): they reach data the provider account shares between all of Strait's clients"}}
}
