package edge

import (
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
)

// maxRoutedLabels bounds the models that get their own metric label
// because a provider served them, beyond those the config names.
const maxRoutedLabels = 64

// labelSafe keeps garbage out of a label even for a served model.
var labelSafe = regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,64}$`)

// modelLabels chooses the model label of the request metrics and of the
// usage store's rows. Model names are client input: labelled as sent, each
// new string is a new series and a new row, and a client could exhaust the
// metrics store and grow the usage store with one request per name. So a
// model is labelled by name only when the config names it (a key's allow-
// list or the price table) or a provider served it (at most
// maxRoutedLabels of those); otherwise by the first configured pattern it
// matches ("gpt-4o-mini*"), or "other".
type modelLabels struct {
	conf atomic.Pointer[labelConf]

	mu     sync.Mutex
	routed map[string]bool
}

// labelConf is what the config names: exact models and glob patterns.
type labelConf struct {
	exact    map[string]bool
	patterns []string
}

func newModelLabels(keys *auth.Keys, prices quota.Prices) *modelLabels {
	l := &modelLabels{routed: map[string]bool{}}
	l.configure(keys, prices)
	return l
}

// configure takes the names and patterns of a new key set.
func (l *modelLabels) configure(keys *auth.Keys, prices quota.Prices) {
	c := &labelConf{exact: map[string]bool{}}
	add := func(p string) {
		switch {
		case !strings.ContainsAny(p, `*?[\`):
			c.exact[p] = true
		case !contains(c.patterns, p):
			c.patterns = append(c.patterns, p)
		}
	}
	for _, p := range prices {
		add(p.Pattern)
	}
	for _, cl := range keys.Clients() {
		for _, p := range cl.Models {
			add(p)
		}
	}
	l.conf.Store(c)
}

// label is the label for a request for model that ended with status.
func (l *modelLabels) label(model string, status int) string {
	c := l.conf.Load()
	if model == "" || c.exact[model] {
		return model
	}
	l.mu.Lock()
	routed := l.routed[model]
	if !routed && status >= 200 && status < 300 && len(l.routed) < maxRoutedLabels && labelSafe.MatchString(model) {
		l.routed[model], routed = true, true
	}
	l.mu.Unlock()
	if routed {
		return model
	}
	for _, p := range c.patterns {
		if ok, _ := path.Match(p, model); ok {
			return p
		}
	}
	return "other"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
