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
	"strings"
	"sync/atomic"

	"github.com/strait/strait/proto"
)

// Kind is a provider's wire dialect and auth style.
type Kind string

// Provider kinds.
const (
	OpenAI           Kind = "openai"
	Anthropic        Kind = "anthropic"
	Gemini           Kind = "gemini"
	OpenAICompatible Kind = "openai-compatible" // DeepSeek, OpenRouter, vLLM, ...
)

// family is the API family a kind serves.
func (k Kind) family() string {
	if k == OpenAICompatible {
		return string(OpenAI)
	}
	return string(k)
}

// DefaultAnthropicVersion is sent when the client did not say which version
// of the Anthropic API it speaks.
const DefaultAnthropicVersion = "2023-06-01"

// ProviderConfig configures one provider.
type ProviderConfig struct {
	Name    string // unique; also the /{name}/... path prefix clients may use
	Kind    Kind
	BaseURL string // scheme://host[:port][/prefix]; request paths are appended
	Keys    []Key  // used round robin; at least one
}

// Provider is one configured upstream API.
type Provider struct {
	Name string
	Kind Kind
	base *url.URL
	keys []Key
	next atomic.Uint64
}

// Registry maps requests to providers.
type Registry struct {
	byName   map[string]*Provider
	byFamily map[string]*Provider
}

// Errors returned by Route and NewRequest.
var (
	ErrNoRoute  = errors.New("no provider configured for this request")
	ErrBadPath  = errors.New("request path not allowed")
	ErrNoKeys   = errors.New("provider has no API keys")
	errNoScheme = errors.New("base URL must be http or https with a host, and no query or user info")
)

// NewRegistry validates the providers. The first provider of each kind serves
// its family by default, unless one is named exactly like the family.
func NewRegistry(cfgs []ProviderConfig) (*Registry, error) {
	r := &Registry{byName: map[string]*Provider{}, byFamily: map[string]*Provider{}}
	for _, c := range cfgs {
		p, err := newProvider(c)
		if err != nil {
			return nil, fmt.Errorf("provider %q: %w", c.Name, err)
		}
		if _, dup := r.byName[p.Name]; dup {
			return nil, fmt.Errorf("provider %q defined twice", p.Name)
		}
		r.byName[p.Name] = p
		fam := p.Kind.family()
		if cur, ok := r.byFamily[fam]; !ok || (p.Name == fam && cur.Name != fam) {
			r.byFamily[fam] = p
		}
	}
	return r, nil
}

func newProvider(c ProviderConfig) (*Provider, error) {
	switch c.Kind {
	case OpenAI, Anthropic, Gemini, OpenAICompatible:
	default:
		return nil, fmt.Errorf("unknown kind %q (want openai, anthropic, gemini or openai-compatible)", c.Kind)
	}
	if c.Name == "" || strings.ContainsAny(c.Name, "/?#") {
		return nil, fmt.Errorf("invalid name %q", c.Name)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("base_url %q: %w", c.BaseURL, errNoScheme)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	if len(c.Keys) == 0 {
		return nil, ErrNoKeys
	}
	return &Provider{Name: c.Name, Kind: c.Kind, base: u, keys: c.Keys}, nil
}

// Providers lists the configured providers.
func (r *Registry) Providers() []*Provider {
	out := make([]*Provider, 0, len(r.byName))
	for _, p := range r.byName {
		out = append(out, p)
	}
	return out
}

// DefaultFor names the provider serving family by default, or "".
func (r *Registry) DefaultFor(family string) string {
	if p := r.byFamily[family]; p != nil {
		return p.Name
	}
	return ""
}

// Route picks the provider for a request: the named one when the client used
// a /{provider}/ prefix, else the family's default. The provider must speak
// the family the edge detected.
func (r *Registry) Route(h *proto.RequestHeader) (*Provider, error) {
	if h.Provider != "" {
		p := r.byName[h.Provider]
		if p == nil {
			return nil, fmt.Errorf("%w: unknown provider %q", ErrNoRoute, h.Provider)
		}
		if p.Kind.family() != h.Family {
			return nil, fmt.Errorf("%w: provider %q speaks %s, request is %s", ErrNoRoute, p.Name, p.Kind.family(), h.Family)
		}
		return p, nil
	}
	if p := r.byFamily[h.Family]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w: no %s provider", ErrNoRoute, h.Family)
}

// BaseURL is the provider's base URL, for logs and `check` output.
func (p *Provider) BaseURL() string { return p.base.String() }

// Keys returns the provider's keys (safe to log: Key redacts itself).
func (p *Provider) Keys() []Key { return p.keys }

// NewRequest builds the upstream request: the provider's own host with the
// client's path appended, the client's headers minus anything that could
// carry credentials or steer the connection, and the provider's key in the
// provider's own header.
func (p *Provider) NewRequest(ctx context.Context, h *proto.RequestHeader, body []byte) (*http.Request, Key, error) {
	if err := checkPath(h.Path); err != nil {
		return nil, Key{}, err
	}
	u := *p.base
	u.Path = p.base.Path + h.Path
	u.RawPath = ""
	u.RawQuery = stripQueryKey(h.RawQuery)
	req, err := http.NewRequestWithContext(ctx, h.Method, u.String(), bytesReader(body))
	if err != nil {
		return nil, Key{}, fmt.Errorf("%w: %v", ErrBadPath, err)
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (readCloser, error) { return bytesReader(body), nil }
	copyHeader(req.Header, h.Header)
	key := p.keys[p.next.Add(1)%uint64(len(p.keys))]
	p.authorize(req.Header, key)
	return req, key, nil
}

func (p *Provider) authorize(hdr http.Header, key Key) {
	switch p.Kind {
	case Anthropic:
		hdr.Set("X-Api-Key", key.Reveal())
		if hdr.Get("Anthropic-Version") == "" {
			hdr.Set("Anthropic-Version", DefaultAnthropicVersion)
		}
	case Gemini:
		hdr.Set("X-Goog-Api-Key", key.Reveal())
	default:
		hdr.Set("Authorization", "Bearer "+key.Reveal())
	}
}

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
	rest, _ := proto.TakeQueryKey(raw)
	return rest
}
