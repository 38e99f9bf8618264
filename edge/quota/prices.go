// Package quota enforces per-client token quotas and spend budgets over UTC
// days and months. A request reserves its estimated tokens and cost before
// it goes out and settles the real figures when it ends, so parallel
// requests cannot together overrun a quota that each alone would fit.
package quota

import (
	"fmt"
	"path"

	"github.com/strait/strait/edge/usage"
)

// Price is a model's price in USD per million tokens. Zero CacheRead or
// CacheWrite means the Input price.
type Price struct {
	Input      float64 `yaml:"input"`
	Output     float64 `yaml:"output"`
	CacheRead  float64 `yaml:"cache_read"`
	CacheWrite float64 `yaml:"cache_write"`
}

// ModelPrice prices the models matching Pattern (path.Match syntax, e.g.
// "gpt-4o-mini*").
type ModelPrice struct {
	Pattern string `yaml:"model"`
	Price   `yaml:",inline"`
}

// Prices is a price table; the first matching pattern wins.
type Prices []ModelPrice

// Validate rejects malformed patterns and negative prices.
func (p Prices) Validate() error {
	for i, m := range p {
		if _, err := path.Match(m.Pattern, ""); err != nil || m.Pattern == "" {
			return fmt.Errorf("prices[%d]: bad model pattern %q", i, m.Pattern)
		}
		if m.Input < 0 || m.Output < 0 || m.CacheRead < 0 || m.CacheWrite < 0 {
			return fmt.Errorf("prices[%d] (%s): negative price", i, m.Pattern)
		}
	}
	return nil
}

// Lookup finds model's price.
func (p Prices) Lookup(model string) (Price, bool) {
	for _, m := range p {
		if ok, _ := path.Match(m.Pattern, model); ok {
			return m.Price, true
		}
	}
	return Price{}, false
}

// Cost is what u costs on model; zero for a model without a price.
func (p Prices) Cost(model string, u usage.Usage) float64 {
	pr, ok := p.Lookup(model)
	if !ok {
		return 0
	}
	read, write := pr.CacheRead, pr.CacheWrite
	if read == 0 {
		read = pr.Input
	}
	if write == 0 {
		write = pr.Input
	}
	return (float64(u.Input)*pr.Input + float64(u.Output)*pr.Output +
		float64(u.CacheRead)*read + float64(u.CacheWrite)*write) / 1e6
}
