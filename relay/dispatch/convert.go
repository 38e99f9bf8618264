package dispatch

import (
	"fmt"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/upstream"
)

// crossFamily answers a request whose route leads to a provider of another
// API family than the client's (an OpenAI SDK asking for claude-*). This is
// the one place where format conversion plugs in; until it exists, such a
// request gets a clear 400 in the client's own format.
func crossFamily(in *upstream.Inbound, t upstream.Target) proto.End {
	return proto.End{Code: proto.CodeBadRequest, Message: fmt.Sprintf(
		"model %q is served by the %s provider %q; conversion from the %s API format is not available",
		in.Model, familyName(t.Provider.Family()), t.Provider.Name, familyName(in.Header.Family))}
}

func familyName(f string) string {
	switch f {
	case "openai":
		return "OpenAI"
	case "anthropic":
		return "Anthropic"
	case "gemini":
		return "Gemini"
	}
	return f
}
