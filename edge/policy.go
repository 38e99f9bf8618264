package edge

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/ratelimit"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/proto/llmapi"
)

// Policy configures what the edge enforces beyond a valid key. The zero
// value enforces only the keys' own limits.
type Policy struct {
	// Prices price models for spend budgets and the usage report.
	Prices quota.Prices
	// UnauthRPM limits requests per minute per source IP (per /64 for
	// IPv6) that come without a valid key (guessing keys, misconfigured
	// clients); zero means 60, negative means no limit.
	UnauthRPM int64
	// OutputEstimate is the output tokens reserved for a request that sets
	// no max_tokens; zero means 1024.
	OutputEstimate int64
	// Now is the clock; nil means time.Now (tests step their own).
	Now func() time.Time
}

func (p Policy) withDefaults() Policy {
	if p.UnauthRPM == 0 {
		p.UnauthRPM = 60
	}
	if p.OutputEstimate <= 0 {
		p.OutputEstimate = 1024
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// rejection is a refused request: the error for the client, the extra
// headers that explain it, and the metric reason.
type rejection struct {
	err    *apierr.Error
	header http.Header
	reason string
}

// authenticate finds the client for key. A request without a valid key
// spends its source IP's allowance first, so key guessing is slowed.
func (e *Edge) authenticate(c *call, key string) *rejection {
	client, ok := e.keys.Load().Lookup(key)
	if !ok {
		if e.policy.UnauthRPM > 0 {
			if d := e.ipLimit.Take(ipLimitKey(sourceIP(c.r)), e.policy.UnauthRPM, 0, 0); !d.OK {
				return rateLimited(c.route.Family, d, "unauthenticated requests from this IP address", "ip_rate_limit")
			}
		}
		msg := "Invalid Strait client key"
		if key == "" {
			msg = "Missing Strait client key (send it as the SDK's API key)"
		}
		return &rejection{err: &apierr.Error{Kind: apierr.Unauthenticated, Code: "invalid_api_key", Message: msg},
			reason: "invalid_key"}
	}
	c.client = client
	if err := client.Usable(e.policy.Now()); err != nil {
		return &rejection{err: &apierr.Error{Kind: apierr.Unauthenticated, Code: "invalid_api_key", Message: err.Error()},
			reason: "key_unusable"}
	}
	return nil
}

// inspect reads the request's model and limits (c.req) with the parser the
// relay shares. A model no policy can judge is refused for every key. A
// body whose model cannot be read is refused when it was declared as JSON,
// and for keys whose allow-list or spend budget depends on the model: the
// relay would otherwise route a model the edge never judged nor priced.
func (e *Edge) inspect(c *call) *rejection {
	req, err := usage.Inspect(c.route.Family, c.route.Path, c.body)
	c.req = req
	switch {
	case err == nil:
		return nil
	case errors.Is(err, llmapi.ErrBadModel):
		return badRequest(err.Error(), "bad_model")
	case isJSON(c.r.Header.Get("Content-Type")):
		return badRequest("request body is not valid JSON (one JSON object)", "bad_request")
	case !req.InPath && modelMatters(c.client):
		return badRequest("Strait cannot read the model of this request (the body must be a JSON object with a \"model\" string); "+
			"client key "+strconv.Quote(c.client.Name)+" has a model allow-list or a spend budget, so its requests must name their model", "model_unreadable")
	}
	return nil
}

// modelMatters: the key's policy depends on which model a request uses.
func modelMatters(c auth.Client) bool {
	return len(c.Models) > 0 || c.Limits.DailyBudget > 0 || c.Limits.MonthlyBudget > 0
}

func badRequest(msg, reason string) *rejection {
	return &rejection{err: &apierr.Error{Kind: apierr.InvalidRequest, Message: msg}, reason: reason}
}

// admit applies the client's model allow-list, rate limits and quotas to a
// request whose body is read. On success the request holds a quota
// reservation (c.reservation) and its estimate is taken from the buckets.
func (e *Edge) admit(c *call) *rejection {
	lim := c.client.Limits
	if !c.client.Allows(c.req.Model) {
		return &rejection{err: &apierr.Error{Kind: apierr.PermissionDenied, Code: "model_not_allowed",
			Message: "Strait client key " + strconv.Quote(c.client.Name) + " may not use model " + strconv.Quote(c.req.Model)},
			reason: "model_not_allowed"}
	}
	c.estimate = c.req.Estimate(len(c.body), e.policy.OutputEstimate)
	in := usage.EstimateTokens(len(c.body))
	want := quota.Totals{Tokens: c.estimate,
		Cost: e.policy.Prices.Cost(c.req.Model, usage.Usage{Input: in, Output: c.estimate - in})}
	a, err := e.admitter.Admit(c.r.Context(), c.client.Name, lim, c.estimate, want)
	switch {
	case err != nil:
		return &rejection{err: &apierr.Error{Kind: apierr.Unavailable, RetryAfter: time.Second,
			Message: "Strait cannot check this key's limits right now (its policy store is unreachable); retry shortly"},
			reason: "store_unavailable"}
	case !a.Rate.OK:
		return rateLimited(c.route.Family, a.Rate, a.Rate.Limit+" per minute of key "+strconv.Quote(c.client.Name), "rate_limit_"+a.Rate.Limit)
	case a.Exceeded != nil:
		// NoRetry: the SDKs' retry loops must not hammer an exhausted quota.
		return &rejection{err: &apierr.Error{Kind: apierr.RateLimited, Code: "insufficient_quota", Message: a.Exceeded.Error(),
			RetryAfter: time.Until(a.Exceeded.Reset), NoRetry: true}, reason: "quota"}
	}
	c.reservation = a.Hold
	return nil
}

// rateLimited is a 429 with Retry-After and the x-ratelimit-* headers of
// the caller's API family.
func rateLimited(fam llmapi.Family, d ratelimit.Decision, what, reason string) *rejection {
	h := http.Header{}
	setRateLimitHeaders(h, fam, d)
	return &rejection{err: &apierr.Error{Kind: apierr.RateLimited, Code: "rate_limit_exceeded",
		RetryAfter: d.RetryAfter, Message: "Strait rate limit reached for " + what + "; retry after " +
			d.RetryAfter.Round(time.Millisecond).String()}, header: h, reason: reason}
}

// setRateLimitHeaders writes OpenAI's x-ratelimit-* headers (which other
// clients and proxies also read) and, for Anthropic callers, Anthropic's
// anthropic-ratelimit-* ones.
func setRateLimitHeaders(h http.Header, fam llmapi.Family, d ratelimit.Decision) {
	for name, s := range map[string]ratelimit.Status{"requests": d.Requests, "tokens": d.Tokens} {
		if s.Limit == 0 {
			continue
		}
		h.Set("X-Ratelimit-Limit-"+name, strconv.FormatInt(s.Limit, 10))
		h.Set("X-Ratelimit-Remaining-"+name, strconv.FormatInt(s.Remaining, 10))
		h.Set("X-Ratelimit-Reset-"+name, s.Reset.Round(time.Millisecond).String())
		if fam == llmapi.Anthropic {
			h.Set("Anthropic-Ratelimit-"+name+"-Limit", strconv.FormatInt(s.Limit, 10))
			h.Set("Anthropic-Ratelimit-"+name+"-Remaining", strconv.FormatInt(s.Remaining, 10))
			h.Set("Anthropic-Ratelimit-"+name+"-Reset", time.Now().Add(s.Reset).UTC().Format(time.RFC3339))
		}
	}
}

// sourceIP is the client's IP address (the TCP peer; Strait is meant to
// face clients directly).
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ipLimitKey is what the per-IP allowance counts ip under: the address, or
// for IPv6 its /64. A host or home network is given a whole /64 and may
// send from any address in it; per address, it could step around the
// allowance and fill the limiter with a new address a request.
func ipLimitKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, _ := a.Prefix(64) // cannot fail for an IPv6 address
	return p.String()
}
