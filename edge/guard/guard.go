// Package guard is the border guard: it finds personal data and sensitive
// words in the text of a request before the request leaves the country,
// and masks (reversibly, restored in the answer), redacts, blocks, or
// keeps the request at home, per category. Only text fields of each API
// family's request are read and rewritten; every other byte is sent as the
// client wrote it. Masked values live in the edge's memory for the one
// request and are never logged; the audit keeps counts per category and
// action.
package guard

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/edge/guard/words"
)

// Action is what happens to a find.
type Action string

// The actions.
const (
	// Mask replaces the value by a placeholder (⟦PHONE_1⟧) and restores it
	// in the answer.
	Mask Action = "mask"
	// Redact replaces the value for good (⟦REDACTED_EMAIL⟧).
	Redact Action = "redact"
	// Block refuses the request (400) naming the category, not the text.
	Block Action = "block"
	// KeepHome sends the request, unchanged, to a relay group marked
	// domestic instead of across the border.
	KeepHome Action = "keep_home"
	// Flag only counts the find for the audit and metrics.
	Flag Action = "flag"
)

var actions = []Action{Mask, Redact, Block, KeepHome, Flag}

// Output actions for sensitive words in answers.
const (
	OutputFlag = "flag" // count them
	OutputMask = "mask" // replace them with ＊
	OutputCut  = "cut"  // end the answer with an error
)

// Config is the guard section of the edge config, global or per client
// key.
type Config struct {
	// Detectors are built-in detectors to run (detect.Builtin).
	Detectors []string `yaml:"detectors"`
	// Custom are named RE2 patterns, compiled once.
	Custom []CustomPattern `yaml:"custom"`
	// Words is a word list: one term a line, optionally a tab and its
	// category.
	Words WordsFile `yaml:"words"`
	// Actions map a category (detector, custom name, word category, or
	// "words" for every word category) to an action; a category without
	// one is masked when it is a detector's and blocked when it is a
	// word's.
	Actions map[string]Action `yaml:"actions"`
	// OutputWords scans answers for the words too: flag, mask or cut;
	// empty leaves answers alone.
	OutputWords string `yaml:"output_words"`
}

// CustomPattern is a named RE2 pattern.
type CustomPattern struct {
	Name    string `yaml:"name"`
	Pattern string `yaml:"pattern"`
}

// WordsFile names a word list.
type WordsFile struct {
	File string `yaml:"file"`
}

// Enabled reports whether the config asks for anything.
func (c *Config) Enabled() bool {
	return c != nil && (len(c.Detectors) > 0 || len(c.Custom) > 0 || c.Words.File != "")
}

// Policy is a compiled Config. It is safe for concurrent use.
type Policy struct {
	detectors *detect.Set
	words     *words.Matcher
	actions   map[string]Action
	// marks are each category's placeholder label and redaction, made
	// once rather than per find.
	marks  map[string]mark
	output string
	home   bool // some category is kept at home
}

type mark struct{ label, redacted string }

// mark is category's placeholder label and redaction.
func (p *Policy) mark(category string) mark {
	if m, ok := p.marks[category]; ok {
		return m
	}
	return mark{label(category), redacted(category)}
}

// Compile checks and compiles c: unknown detectors or actions, patterns
// that do not compile, and word lists that cannot be read are refused with
// their reason. A nil or empty config compiles to a nil Policy, which
// does nothing.
func Compile(c *Config) (*Policy, error) {
	if !c.Enabled() {
		return nil, nil
	}
	custom := make([]detect.Custom, len(c.Custom))
	for i, p := range c.Custom {
		custom[i] = detect.Custom{Name: p.Name, Pattern: p.Pattern}
	}
	set, err := detect.New(c.Detectors, custom)
	if err != nil {
		return nil, err
	}
	p := &Policy{detectors: set, actions: map[string]Action{}, output: c.OutputWords}
	if c.Words.File != "" {
		f, err := os.Open(c.Words.File)
		if err != nil {
			return nil, fmt.Errorf("words.file: %w", err)
		}
		terms, err := words.Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("words.file %s: %w", c.Words.File, err)
		}
		p.words = words.New(terms)
	}
	known := p.categories()
	p.marks = make(map[string]mark, len(known))
	for _, c := range known {
		p.marks[c] = mark{label(c), redacted(c)}
	}
	for cat, a := range c.Actions {
		if !slices.Contains(actions, a) {
			return nil, fmt.Errorf("actions.%s: unknown action %q (want mask, redact, block, keep_home or flag)", cat, a)
		}
		if !slices.Contains(known, cat) && cat != words.DefaultCategory {
			return nil, fmt.Errorf("actions.%s: no detector, custom pattern or word category of that name (have %s)", cat, strings.Join(known, ", "))
		}
		p.actions[cat] = a
		p.home = p.home || a == KeepHome
	}
	switch c.OutputWords {
	case "", OutputFlag, OutputMask, OutputCut:
	default:
		return nil, fmt.Errorf("output_words: %q, want flag, mask or cut", c.OutputWords)
	}
	if c.OutputWords != "" && p.words == nil {
		return nil, fmt.Errorf("output_words: needs words.file")
	}
	return p, nil
}

// categories lists what the policy can find.
func (p *Policy) categories() []string {
	out := slices.Clone(p.detectorNames())
	out = append(out, p.words.Categories()...)
	sort.Strings(out)
	return slices.Compact(out)
}

func (p *Policy) detectorNames() []string { return p.detectors.Names() }

// KeepsHome reports whether some category is kept at home (the edge then
// needs a domestic relay group).
func (p *Policy) KeepsHome() bool { return p != nil && p.home }

// action is what to do with a find of category; word finds fall back to
// the "words" entry, then block; detector finds to mask.
func (p *Policy) action(category string, word bool) Action {
	if a, ok := p.actions[category]; ok {
		return a
	}
	if word {
		if a, ok := p.actions[words.DefaultCategory]; ok {
			return a
		}
		return Block
	}
	return Mask
}
