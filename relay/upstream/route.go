package upstream

import (
	"errors"
	"fmt"
	"strings"
)

// RouteConfig maps a model name, or a pattern of names, to a provider.
type RouteConfig struct {
	// Model is an exact name ("gpt-4o", or an alias such as "fast") or a
	// pattern where '*' matches any run of characters ("claude-*").
	Model string
	// Provider names the provider that serves the model.
	Provider string
	// UpstreamModel is the name the provider knows the model by; empty keeps
	// the name the client sent.
	UpstreamModel string
	// Fallbacks are tried in order once the provider has failed every
	// attempt before the first byte.
	Fallbacks []TargetConfig
	// MaxChoices, when set, overrides the relay's max_choices for this
	// route: the most calls a Chat request for n > 1 fans out to when the
	// provider makes one choice per call; 1 refuses n > 1.
	MaxChoices int
}

// TargetConfig is a fallback: a provider and, optionally, its model name.
type TargetConfig struct {
	Provider string
	Model    string // empty keeps the client's model name
}

// Target is one place a request can go: a provider and the model name to
// send it.
type Target struct {
	Provider *Provider
	// Model is the upstream model name; empty when the request names none
	// (e.g. GET /v1/models).
	Model string
}

// Route is where one request goes: Targets[0] first, then each fallback.
type Route struct {
	Model   string // what the client asked for
	Targets []Target
	// Rule says which rule matched, for logs: "prefix", "exact", "pattern
	// claude-*", "default claude-*" or "family".
	Rule string
	// MaxChoices is the route's RouteConfig.MaxChoices; zero: the relay's.
	MaxChoices int
}

// ErrUnknownModel reports a model no route serves.
var ErrUnknownModel = errors.New("model not served")

// route is a compiled RouteConfig.
type route struct {
	match      string
	pattern    bool
	targets    []routeTarget
	maxChoices int
}

type routeTarget struct {
	p     *Provider
	model string // "" keeps the requested name
}

func (r *route) matches(model string) bool {
	if !r.pattern {
		return r.match == model
	}
	return glob(r.match, model)
}

// resolve turns the compiled targets into a Route for model.
func (r *route) resolve(model, rule string) *Route {
	out := &Route{Model: model, Rule: rule, Targets: make([]Target, len(r.targets)), MaxChoices: r.maxChoices}
	for i, t := range r.targets {
		m := t.model
		if m == "" {
			m = model
		}
		out.Targets[i] = Target{Provider: t.p, Model: m}
	}
	return out
}

// glob reports whether name matches pattern, where '*' matches any run of
// characters, '/' included (OpenRouter names such as "openai/gpt-4o").
func glob(pattern, name string) bool {
	// Piece by piece with strings.Cut, not strings.Split: every request's
	// model is matched against the route table and the default patterns,
	// and a split allocated each time (5 % of the relay's CPU at its
	// maximum rate on loopback, 2026-12-07).
	prefix, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == name
	}
	if !strings.HasPrefix(name, prefix) {
		return false
	}
	name = name[len(prefix):]
	for {
		mid, after, more := strings.Cut(rest, "*")
		if !more {
			return strings.HasSuffix(name, rest) // rest is the last piece
		}
		i := strings.Index(name, mid)
		if i < 0 {
			return false
		}
		name, rest = name[i+len(mid):], after
	}
}

// defaultPatterns send a model to the provider of the family that owns the
// name, whatever API the client used, when such a provider is configured:
// with conversion, an OpenAI SDK can then call claude-* directly, and an
// Anthropic or Gemini SDK gpt-4o-mini. The lists are the vendors' own
// published prefixes; they are checked in order (Gemini's text-embedding-004
// before OpenAI's text-embedding-*).
var defaultPatterns = []struct {
	pattern string
	family  string
}{
	{"claude-*", string(Anthropic)},
	{"gemini-*", string(Gemini)},
	{"gemma-*", string(Gemini)},
	{"imagen-*", string(Gemini)},
	{"veo-*", string(Gemini)},
	{"embedding-*", string(Gemini)},
	{"text-embedding-00*", string(Gemini)},
	{"learnlm-*", string(Gemini)},
	{"gpt-*", string(OpenAI)},
	{"chatgpt-*", string(OpenAI)},
	{"o1", string(OpenAI)},
	{"o1-*", string(OpenAI)},
	{"o3", string(OpenAI)},
	{"o3-*", string(OpenAI)},
	{"o4-*", string(OpenAI)},
	{"codex-*", string(OpenAI)},
	{"computer-use-*", string(OpenAI)},
	{"text-embedding-*", string(OpenAI)},
	{"omni-moderation-*", string(OpenAI)},
	{"text-moderation-*", string(OpenAI)},
	{"dall-e-*", string(OpenAI)},
	{"whisper-*", string(OpenAI)},
	{"tts-*", string(OpenAI)},
	{"davinci-*", string(OpenAI)},
	{"babbage-*", string(OpenAI)},
}

// ownerFamily is the family whose vendor publishes model, by the default
// patterns, or "" for a name no vendor prefix claims (aliases, open models).
func ownerFamily(model string) (family, pattern string) {
	for _, d := range defaultPatterns {
		if glob(d.pattern, model) {
			return d.family, d.pattern
		}
	}
	return "", ""
}

// native reports whether a provider of kind k is the vendor's own API (or
// Azure's copy of OpenAI's), which serves only the vendor's models; an
// OpenAI-compatible server (OpenRouter, vLLM, …) may serve any name.
func (k Kind) native() bool { return k != OpenAICompatible }

// vendor is the provider that serves family's own models by default: the
// family's default provider when it is native, else the first native one
// configured; nil when there is none (an OpenAI-compatible server is never
// guessed to serve gpt-* names).
func (r *Registry) vendor(family string) *Provider {
	if p := r.byFamily[family]; p != nil && p.Kind.native() {
		return p
	}
	for _, p := range r.order {
		if p.Kind.family() == family && p.Kind.native() {
			return p
		}
	}
	return nil
}

// compileRoutes checks the table against the providers. Routes come first
// in config order, then the models each provider lists as exact names.
func compileRoutes(cfgs []RouteConfig, providers []ProviderConfig, byName map[string]*Provider) ([]*route, error) {
	var out []*route
	seen := map[string]bool{}
	add := func(rc RouteConfig) error {
		if rc.Model == "" {
			return errors.New("model is required")
		}
		if seen[rc.Model] {
			return fmt.Errorf("model %q routed twice", rc.Model)
		}
		seen[rc.Model] = true
		if rc.MaxChoices < 0 || rc.MaxChoices > 128 {
			return fmt.Errorf("model %q: max_choices %d: between 0 (the relay's) and 128", rc.Model, rc.MaxChoices)
		}
		r := &route{match: rc.Model, pattern: strings.Contains(rc.Model, "*"), maxChoices: rc.MaxChoices}
		for _, t := range append([]TargetConfig{{Provider: rc.Provider, Model: rc.UpstreamModel}}, rc.Fallbacks...) {
			p := byName[t.Provider]
			if p == nil {
				return fmt.Errorf("unknown provider %q", t.Provider)
			}
			if strings.Contains(t.Model, "*") {
				return fmt.Errorf("upstream model %q: patterns only on the left side", t.Model)
			}
			r.targets = append(r.targets, routeTarget{p: p, model: t.Model})
		}
		out = append(out, r)
		return nil
	}
	for i, rc := range cfgs {
		if err := add(rc); err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
	}
	for _, pc := range providers {
		for _, m := range pc.Models {
			if seen[m] {
				continue // an explicit route wins over a provider's list
			}
			if err := add(RouteConfig{Model: m, Provider: pc.Name}); err != nil {
				return nil, fmt.Errorf("provider %q models: %w", pc.Name, err)
			}
		}
	}
	return out, nil
}

// Resolve finds where a request goes. provider is the client's /{name}/
// path prefix (or ""), model the name from the body or Gemini path (or "").
// In order: a prefix names the provider outright; then exact names, then
// patterns (config order); then the vendors' well-known prefixes (claude-*,
// gemini-*, gpt-*, o3-*, …) go to their family's native provider; then the
// family's default provider takes any model unchanged, unless StrictModels
// is set or the name is another vendor's whose provider is not configured
// (a native provider could not serve it).
func (r *Registry) Resolve(family, provider, model string) (*Route, error) {
	if provider != "" {
		p := r.byName[provider]
		if p == nil {
			return nil, fmt.Errorf("%w: unknown provider %q", ErrNoRoute, provider)
		}
		if p.Kind.family() != family {
			return nil, fmt.Errorf("%w: provider %q speaks %s, request is %s", ErrNoRoute, p.Name, p.Kind.family(), family)
		}
		return &Route{Model: model, Rule: "prefix", Targets: []Target{{Provider: p, Model: model}}}, nil
	}
	if model != "" {
		if rt := r.match(model); rt != nil {
			return rt, nil
		}
	}
	p := r.byFamily[family]
	if p == nil {
		if model == "" {
			return nil, fmt.Errorf("%w: no %s provider", ErrNoRoute, family)
		}
		return nil, fmt.Errorf("%w: model %q matches no route and no %s provider is configured", ErrUnknownModel, model, family)
	}
	if model != "" && r.strict {
		return nil, fmt.Errorf("%w: model %q matches no route (strict_models is on)", ErrUnknownModel, model)
	}
	if fam, _ := ownerFamily(model); fam != "" && fam != family && p.Kind.native() {
		// The vendor API would only answer "model not found" after a round
		// trip, or worse serve a look-alike name: say so here, in the
		// client's format.
		return nil, fmt.Errorf("%w: model %q is a %s model and no %s provider is configured", ErrUnknownModel, model, fam, fam)
	}
	return &Route{Model: model, Rule: "family", Targets: []Target{{Provider: p, Model: model}}}, nil
}

func (r *Registry) match(model string) *Route {
	for _, rt := range r.routes {
		if !rt.pattern && rt.matches(model) {
			return rt.resolve(model, "exact")
		}
	}
	for _, rt := range r.routes {
		if rt.pattern && rt.matches(model) {
			return rt.resolve(model, "pattern "+rt.match)
		}
	}
	if fam, pattern := ownerFamily(model); fam != "" {
		if p := r.vendor(fam); p != nil {
			return &Route{Model: model, Rule: "default " + pattern, Targets: []Target{{Provider: p, Model: model}}}
		}
	}
	return nil
}

// Served lists the exact model names of the table whose first target
// speaks family, in table order: what a model listing adds to the
// provider's own list.
func (r *Registry) Served(family string) []Target {
	var out []Target
	for _, rt := range r.routes {
		if rt.pattern || rt.targets[0].p.Kind.family() != family {
			continue
		}
		out = append(out, Target{Provider: rt.targets[0].p, Model: rt.match})
	}
	return out
}

// Strict reports whether models outside the table are refused.
func (r *Registry) Strict() bool { return r.strict }

// responsesOnlyModels are OpenAI's models served only on the Responses API
// (platform.openai.com/docs/models: "available in the Responses API only").
var responsesOnlyModels = []string{"o1-pro*", "o3-pro*", "o3-deep-research*", "o4-mini-deep-research*", "codex-mini*",
	"gpt-5-pro*", "gpt-5*-codex*", "computer-use-preview*"}

// ResponsesOnly reports whether p serves model only on the Responses API:
// an OpenAI or Azure provider, and a model OpenAI lists as Responses-only
// or the provider's config names.
func (p *Provider) ResponsesOnly(model string) bool {
	if p.Kind != OpenAI && p.Kind != AzureOpenAI {
		return false
	}
	for _, list := range [][]string{p.responses, responsesOnlyModels} {
		for _, pattern := range list {
			if glob(pattern, model) {
				return true
			}
		}
	}
	return false
}
