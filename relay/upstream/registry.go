// Package upstream holds the relay's providers: their allow-listed base URLs,
// their API keys, and the shared HTTP transport that reaches them. A request
// can only ever go to a configured provider's host, so the relay is never an
// open proxy.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Kind is a provider's wire dialect and auth style.
type Kind string

// Provider kinds.
const (
	OpenAI                = Kind(llmapi.OpenAI)
	Anthropic             = Kind(llmapi.Anthropic)
	Gemini                = Kind(llmapi.Gemini)
	OpenAICompatible Kind = "openai-compatible" // DeepSeek, OpenRouter, vLLM, ...
	// AzureOpenAI speaks OpenAI's API with an api-key header; with an
	// APIVersion it uses deployment URLs (the model name is the deployment).
	AzureOpenAI Kind = "azure-openai"
)

// family is the API family a kind serves.
func (k Kind) family() string {
	if k == OpenAICompatible || k == AzureOpenAI {
		return string(llmapi.OpenAI)
	}
	return string(k)
}

// Family is the API family the provider speaks: "openai", "anthropic" or
// "gemini" (the values of proto.RequestHeader.Family).
func (p *Provider) Family() string { return p.Kind.family() }

// DefaultAnthropicVersion is sent when the client did not say which version
// of the Anthropic API it speaks.
const DefaultAnthropicVersion = "2023-06-01"

// ProviderConfig configures one provider.
type ProviderConfig struct {
	Name    string // unique; also the /{name}/... path prefix clients may use
	Kind    Kind
	BaseURL string // scheme://host[:port][/prefix]; request paths are appended
	Keys    []Key  // at least one
	// Weights, when set, has one positive weight per key: a key with weight
	// 2 is chosen twice as often as one with weight 1. Nil means all 1.
	Weights []int
	// Models are served by this provider: each is an exact route to it,
	// and is listed by the model listings.
	Models []string
	// APIVersion is Azure OpenAI's api-version; with it, requests go to
	// /openai/deployments/{model}/... (see AzureOpenAI).
	APIVersion string
	// Timeouts override Config.Timeouts for this provider where non-zero.
	Timeouts Timeouts
	// AllowHeaders are client headers forwarded although the default
	// policy drops them (account headers such as OpenAI-Organization, and
	// X-* headers): names, or prefixes ending in '*' ("X-Fake-*").
	// Credentials and Accept-Encoding are never forwarded.
	AllowHeaders []string
	// ResponsesModels are models (names or '*' patterns) this OpenAI or
	// Azure provider serves only on the Responses API, beyond the known
	// ones (see ResponsesOnly): clients of the other APIs reach them
	// converted.
	ResponsesModels []string
}

// Provider is one configured upstream API.
type Provider struct {
	Name       string
	Kind       Kind
	base       *url.URL
	apiVersion string
	pool       *keyPool
	timeouts   Timeouts
	headers    HeaderFilter
	responses  []string // ProviderConfig.ResponsesModels
}

// Config is everything a Registry is built from.
type Config struct {
	Providers []ProviderConfig
	Routes    []RouteConfig
	// StrictModels refuses (404) models that match no route, instead of
	// passing them unchanged to the family's provider.
	StrictModels bool
	// Keys tunes the key state machine; zero values take the defaults.
	Keys KeyPolicy
	// Timeouts apply to every provider unless it overrides them.
	Timeouts Timeouts
	// Endpoints are the endpoint classes served beyond inference
	// (llmapi.EndpointClasses: files, batches, fine_tuning, stored,
	// assistants, media, all); empty serves inference only.
	Endpoints []string
}

// Registry maps requests to providers. It is an immutable value built from
// the config (key states inside it change; its shape does not), so a reload
// builds a new one and swaps it in.
type Registry struct {
	byName    map[string]*Provider
	byFamily  map[string]*Provider
	order     []*Provider
	routes    []*route
	strict    bool
	endpoints []string
}

// Errors returned by Route and NewRequest.
var (
	ErrNoRoute  = errors.New("no provider configured for this request")
	ErrBadPath  = errors.New("request path not allowed")
	ErrNoKeys   = errors.New("provider has no API keys")
	errNoScheme = errors.New("base URL must be http or https with a host, and no query or user info")
)

// NewRegistry builds a registry of providers with no route table.
func NewRegistry(cfgs []ProviderConfig) (*Registry, error) {
	return New(Config{Providers: cfgs}, nil)
}

// New validates cfg and builds a registry. The first provider of each kind
// serves its family by default, unless one is named exactly like the
// family. Keys that prev already had (same provider, same fingerprint) keep
// their state, so a reload neither forgets a disabled key nor revives a
// cooling one.
func New(cfg Config, prev *Registry) (*Registry, error) {
	r := &Registry{byName: map[string]*Provider{}, byFamily: map[string]*Provider{}, strict: cfg.StrictModels,
		endpoints: cfg.Endpoints}
	for _, e := range cfg.Endpoints {
		if !slices.Contains(llmapi.EndpointClasses, e) {
			return nil, fmt.Errorf("endpoints: unknown class %q (want one of %s)", e, strings.Join(llmapi.EndpointClasses, ", "))
		}
	}
	policy := cfg.Keys.withDefaults()
	for _, c := range cfg.Providers {
		p, err := newProvider(c, policy, cfg.Timeouts, prev)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", c.Name, err)
		}
		if _, dup := r.byName[p.Name]; dup {
			return nil, fmt.Errorf("provider %q defined twice", p.Name)
		}
		r.byName[p.Name] = p
		r.order = append(r.order, p)
		fam := p.Kind.family()
		if cur, ok := r.byFamily[fam]; !ok || (p.Name == fam && cur.Name != fam) {
			r.byFamily[fam] = p
		}
	}
	routes, err := compileRoutes(cfg.Routes, cfg.Providers, r.byName)
	if err != nil {
		return nil, err
	}
	r.routes = routes
	return r, nil
}

// shownURL is a refused base URL as errors may show it: without what may
// be a credential (user info, a query such as ?key=), which is why it was
// refused, and the error is printed at start and logged on a reload.
func shownURL(raw string) string {
	if strings.ContainsAny(raw, "@?") {
		return "(not shown: it has user info or a query, which may hold credentials)"
	}
	return strconv.Quote(raw)
}

func newProvider(c ProviderConfig, policy KeyPolicy, timeouts Timeouts, prev *Registry) (*Provider, error) {
	switch c.Kind {
	case OpenAI, Anthropic, Gemini, OpenAICompatible, AzureOpenAI:
	default:
		return nil, fmt.Errorf("unknown kind %q (want openai, anthropic, gemini, openai-compatible or azure-openai)", c.Kind)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "/?#") {
		return nil, fmt.Errorf("invalid name %q", c.Name)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("base_url %s: %w", shownURL(c.BaseURL), errNoScheme)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if len(c.Keys) == 0 {
		return nil, ErrNoKeys
	}
	if c.Weights != nil && len(c.Weights) != len(c.Keys) {
		return nil, fmt.Errorf("%d weights for %d keys", len(c.Weights), len(c.Keys))
	}
	var old *keyPool
	if prev != nil && prev.byName[c.Name] != nil {
		old = prev.byName[c.Name].pool
	}
	pool, err := newKeyPool(c.Name, c.Keys, c.Weights, policy, old)
	if err != nil {
		return nil, err
	}
	headers, err := NewHeaderFilter(c.AllowHeaders)
	if err != nil {
		return nil, err
	}
	return &Provider{Name: c.Name, Kind: c.Kind, base: u, apiVersion: c.APIVersion, pool: pool,
		timeouts: c.Timeouts.or(timeouts), headers: headers, responses: c.ResponsesModels}, nil
}

// ServesEndpoint reports whether requests of an endpoint class (see
// llmapi.EndpointClass) may go upstream at all.
func (r *Registry) ServesEndpoint(class string) bool {
	return llmapi.AllowsEndpoint(r.endpoints, class)
}

// Providers lists the configured providers in config order.
func (r *Registry) Providers() []*Provider { return append([]*Provider(nil), r.order...) }

// Provider returns the named provider, or nil.
func (r *Registry) Provider(name string) *Provider { return r.byName[name] }

// DefaultFor names the provider serving family by default, or "".
func (r *Registry) DefaultFor(family string) string {
	if p := r.byFamily[family]; p != nil {
		return p.Name
	}
	return ""
}

// BaseURL is the provider's base URL, for logs and `check` output.
func (p *Provider) BaseURL() string { return p.base.String() }

// Keys returns the provider's keys (safe to log: Key redacts itself).
func (p *Provider) Keys() []Key { return p.pool.keyList() }

// Timeouts are the provider's effective timeouts.
func (p *Provider) Timeouts() Timeouts { return p.timeouts }

// NewRequest builds the upstream request for in to target t with key: the
// provider's own host with the client's path appended, the client's
// headers that the provider's HeaderFilter lets through (never anything
// that could carry credentials, name another account or steer the
// connection), and key in the provider's own header. The body and path stay
// byte for byte the client's unless t names a different model.
func (t Target) NewRequest(ctx context.Context, in *Inbound, key Key) (*http.Request, error) {
	p := t.Provider
	h := in.Header
	if err := checkPath(h.Path); err != nil {
		return nil, err
	}
	upPath, query, body := h.Path, stripQueryKey(h.RawQuery), in.Body
	if t.Model != in.Model && in.Model != "" {
		var err error
		if upPath, body, err = in.withModel(t.Model); err != nil {
			return nil, err
		}
	}
	if p.Kind == AzureOpenAI && p.apiVersion != "" {
		upPath, query = azurePath(upPath, t.Model), azureQuery(query, p.apiVersion)
	}
	if upPath != h.Path {
		// A model name became part of the path: it must not add segments.
		if strings.ContainsAny(t.Model, "/\\?#%") {
			return nil, fmt.Errorf("%w: model %q cannot go into a URL path", ErrBadPath, t.Model)
		}
		if err := checkPath(upPath); err != nil {
			return nil, err
		}
	}
	u := *p.base
	u.Path = p.base.Path + upPath
	u.RawPath = ""
	u.RawQuery = query
	rb, getBody := requestBody(body)
	req, err := http.NewRequestWithContext(ctx, h.Method, u.String(), rb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPath, err)
	}
	req.ContentLength = int64(len(body))
	req.GetBody = getBody
	p.headers.Copy(req.Header, h.Header)
	p.authorize(req.Header, key)
	return req, nil
}

func (p *Provider) authorize(hdr http.Header, key Key) {
	if p.Kind == AzureOpenAI {
		hdr.Set("Api-Key", key.Reveal())
		return
	}
	llmapi.SetKey(hdr, llmapi.Family(p.Kind.family()), key.Reveal())
	if p.Kind == Anthropic && hdr.Get("Anthropic-Version") == "" {
		hdr.Set("Anthropic-Version", DefaultAnthropicVersion)
	}
}

// CheckPath reports a request path the relay refuses to send upstream.
func CheckPath(p string) error { return checkPath(p) }

// checkPath accepts only clean absolute paths: no dot segments, no empty
// segments, no encoded tricks that a provider might resolve differently.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\\x00?#") {
		return fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	if path.Clean(p) != strings.TrimSuffix(p, "/") && path.Clean(p) != p {
		return fmt.Errorf("%w: %q", ErrBadPath, p)
	}
	return nil
}

// stripQueryKey removes any key= so a key never travels in a URL (URLs end
// up in logs and error messages); the edge already took it out, this is the
// second line of defence.
func stripQueryKey(raw string) string {
	rest, _ := llmapi.TakeQueryKey(raw)
	return rest
}
