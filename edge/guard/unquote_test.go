package guard

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzUnquoteMatchesDecoder: unquote reads a string literal as
// encoding/json does (it replaced json.Unmarshal for literals with
// escapes or invalid UTF-8): the same value, and an error for the same
// literals. Literals without either are read as they lie, as before.
func FuzzUnquoteMatchesDecoder(f *testing.F) {
	for _, s := range []string{`plain`, `a\nb`, `\"q\" \\ \/ \b\f\r\t`, `\u4e2d\u6587`, `\ud83d\ude00`, `\ud83d x`, `\ude00`,
		`\ud83d\u0041`, "\xff\xfe", "ok \xe2\x80\xa8", `\x`, `\u12`, "tab\there", `\'`, "\x01\\n", `\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		if openQuote(body) {
			return // the walker ends a literal at its first unescaped quote
		}
		lit := []byte(`"` + body + `"`)
		got, _, err := unquote(nil, lit)
		var want string
		werr := json.Unmarshal(lit, &want)
		if !hasEscapeOrInvalid(body) {
			if err != nil || string(got) != body {
				t.Fatalf("unquote(%q) = %q, %v; want the bytes as they are", lit, got, err)
			}
			return
		}
		if (err != nil) != (werr != nil) || err == nil && string(got) != want {
			t.Fatalf("unquote(%q) = %q, %v; encoding/json %q, %v", lit, got, err, want, werr)
		}
		if s, derr := decodeString(lit); (derr != nil) != (werr != nil) || derr == nil && s != want {
			t.Fatalf("decodeString(%q) = %q, %v; encoding/json %q, %v", lit, s, derr, want, werr)
		}
	})
}

// openQuote: body has a quote not escaped by a backslash, or ends in an
// odd backslash run (which would escape the closing quote).
func openQuote(body string) bool {
	bs := 0
	for k := 0; k < len(body); k++ {
		switch body[k] {
		case '\\':
			bs++
			continue
		case '"':
			if bs%2 == 0 {
				return true
			}
		}
		bs = 0
	}
	return bs%2 == 1
}

// hasEscapeOrInvalid: the literal went to json.Unmarshal before.
func hasEscapeOrInvalid(s string) bool { return strings.Contains(s, `\`) || !utf8.ValidString(s) }
