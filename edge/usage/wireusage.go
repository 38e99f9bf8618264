package usage

import (
	"unicode/utf8"

	"github.com/strait/strait/proto/llmapi"
)

// Every unary answer and every stream's last event carry a "usage" object,
// and json.Unmarshal into llmapi.WireUsage, a struct of embedded structs,
// was 5.5 % of the edge's CPU at the lab's closed-loop rate (issue 13,
// 2026-12-07): more than the rest of metering the answer. readUsage reads
// the object the way the decoder would, with no reflection and no
// allocation, and gives up on anything the decoder might read otherwise;
// FuzzReadUsage checks it against the decoder.

// usageField is one integer of a usage object: its key, and where the
// value goes.
type usageField struct {
	key  string
	slot usageSlot
}

// usageSlot names an integer field of llmapi.WireUsage.
type usageSlot uint8

// The integer fields of llmapi.WireUsage, for usageField.slot.
const (
	slotPromptTokensDetailsCachedTokens usageSlot = iota
	slotPromptTokensDetailsCacheWriteTokens
	slotCompletionTokensDetailsReasoningTokens
	slotInputTokensDetailsCachedTokens
	slotInputTokensDetailsCacheWriteTokens
	slotOutputTokensDetailsReasoningTokens
	slotPromptTokens
	slotCompletionTokens
	slotTotalTokens
	slotInputTokens
	slotCacheCreationInputTokens
	slotCacheReadInputTokens
	slotOutputTokens
	slotCount
)

// usageInts is where each slot's value goes in one WireUsage: an array,
// not a func per field, so that w stays on its caller's stack.
type usageInts [slotCount]*int64

func intsOf(w *llmapi.WireUsage) usageInts {
	return usageInts{
		slotPromptTokensDetailsCachedTokens:        &w.PromptTokensDetails.CachedTokens,
		slotPromptTokensDetailsCacheWriteTokens:    &w.PromptTokensDetails.CacheWriteTokens,
		slotCompletionTokensDetailsReasoningTokens: &w.CompletionTokensDetails.ReasoningTokens,
		slotInputTokensDetailsCachedTokens:         &w.InputTokensDetails.CachedTokens,
		slotInputTokensDetailsCacheWriteTokens:     &w.InputTokensDetails.CacheWriteTokens,
		slotOutputTokensDetailsReasoningTokens:     &w.OutputTokensDetails.ReasoningTokens,
		slotPromptTokens:                           &w.PromptTokens,
		slotCompletionTokens:                       &w.CompletionTokens,
		slotTotalTokens:                            &w.TotalTokens,
		slotInputTokens:                            &w.InputTokens,
		slotCacheCreationInputTokens:               &w.CacheCreationInputTokens,
		slotCacheReadInputTokens:                   &w.CacheReadInputTokens,
		slotOutputTokens:                           &w.OutputTokens,
	}
}

// usageObject is one object of a usage: its integer fields, and the
// objects nested in it.
type usageObject struct {
	ints    []usageField
	objects []usageChild
}

type usageChild struct {
	key string
	obj *usageObject
}

var (
	promptDetails = &usageObject{ints: []usageField{
		{"cached_tokens", slotPromptTokensDetailsCachedTokens},
		{"cache_write_tokens", slotPromptTokensDetailsCacheWriteTokens},
	}}
	completionDetails = &usageObject{ints: []usageField{
		{"reasoning_tokens", slotCompletionTokensDetailsReasoningTokens},
	}}
	inputDetails = &usageObject{ints: []usageField{
		{"cached_tokens", slotInputTokensDetailsCachedTokens},
		{"cache_write_tokens", slotInputTokensDetailsCacheWriteTokens},
	}}
	outputDetails = &usageObject{ints: []usageField{
		{"reasoning_tokens", slotOutputTokensDetailsReasoningTokens},
	}}
	// wireUsage is llmapi.WireUsage's JSON shape; TestUsageShape checks it
	// against the struct's tags.
	wireUsage = &usageObject{
		ints: []usageField{
			{"prompt_tokens", slotPromptTokens},
			{"completion_tokens", slotCompletionTokens},
			{"total_tokens", slotTotalTokens},
			{"input_tokens", slotInputTokens},
			{"cache_creation_input_tokens", slotCacheCreationInputTokens},
			{"cache_read_input_tokens", slotCacheReadInputTokens},
			{"output_tokens", slotOutputTokens},
		},
		objects: []usageChild{
			{"prompt_tokens_details", promptDetails},
			{"completion_tokens_details", completionDetails},
			{"input_tokens_details", inputDetails},
			{"output_tokens_details", outputDetails},
		},
	}
)

// readUsage decodes b, a JSON object json.Valid accepted, into w as
// json.Unmarshal would. ok is false, and w may be partly written, when b
// has something the decoder could read otherwise: a key with an escape, or
// in another case than its field's, or a field's value that is not a plain
// integer (or null, or for a nested object, an object).
func readUsage(b []byte, w *llmapi.WireUsage) (ok bool) {
	ints := intsOf(w)
	i, ok := wireUsage.read(b, 0, &ints)
	return ok && llmapi.SkipSpace(b, i) == len(b)
}

// read reads the object at or after b[i] and returns the index after it.
func (o *usageObject) read(b []byte, i int, ints *usageInts) (int, bool) {
	i = llmapi.SkipSpace(b, i)
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	i++
	for {
		i = llmapi.SkipSpace(b, i)
		switch b[i] {
		case '}':
			return i + 1, true
		case ',':
			i = llmapi.SkipSpace(b, i+1)
		}
		start := i
		end, escaped := llmapi.SkipString(b, i)
		if escaped {
			return i, false
		}
		key := b[start+1 : end-1]
		i = llmapi.SkipSpace(b, end) + 1 // the colon
		i = llmapi.SkipSpace(b, i)
		var ok bool
		if i, ok = o.field(key, b, i, ints); !ok {
			return i, false
		}
	}
}

// field reads the value at b[i] of the member named key.
func (o *usageObject) field(key, b []byte, i int, ints *usageInts) (int, bool) {
	for _, f := range o.ints {
		if string(key) == f.key {
			return readInt(b, i, ints[f.slot])
		}
	}
	for _, c := range o.objects {
		if string(key) == c.key {
			if b[i] == 'n' { // null leaves the object as it is
				return llmapi.SkipLiteral(b, i), true
			}
			return c.obj.read(b, i, ints)
		}
	}
	if o.folds(key) {
		return i, false // the decoder matches keys in any case
	}
	return llmapi.SkipValue(b, i), true
}

// folds reports whether key may name one of o's fields in another case.
func (o *usageObject) folds(key []byte) bool {
	for _, f := range o.ints {
		if mayFold(key, f.key) {
			return true
		}
	}
	for _, c := range o.objects {
		if mayFold(key, c.key) {
			return true
		}
	}
	return false
}

// mayFold reports whether key may equal name under Unicode case folding
// (bytes.EqualFold, the decoder's rule): it compares ASCII keys exactly
// and says yes to any other, which then goes to the decoder.
func mayFold(key []byte, name string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return true // 'ſ' folds to 's', 'K' (Kelvin) to 'k'
		}
	}
	if len(key) != len(name) {
		return false
	}
	for i, c := range key {
		if c|0x20 != name[i]|0x20 {
			return false
		}
	}
	return true
}

// readInt reads the integer (or null, which leaves *v alone) at b[i].
func readInt(b []byte, i int, v *int64) (int, bool) {
	end := llmapi.SkipLiteral(b, i)
	lit := b[i:end]
	if string(lit) == "null" {
		return end, true
	}
	neg := len(lit) > 0 && lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	// Up to 18 digits cannot overflow an int64; longer ones go to the
	// decoder, as do fractions and exponents.
	if len(lit) == 0 || len(lit) > 18 {
		return i, false
	}
	var n int64
	for _, c := range lit {
		if c < '0' || c > '9' {
			return i, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	*v = n
	return end, true
}
