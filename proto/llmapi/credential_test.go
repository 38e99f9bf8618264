package llmapi

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// --- query keys --------------------------------------------------------------

// FuzzTakeQueryKey checks TakeQueryKey against this definition. A raw query
// consists of parameters: the non-empty substrings between '&' and ';'
// separators (strings.FieldsFunc). A parameter's name is the text before its
// first '='; it is a key parameter if that name, percent-decoded with
// url.QueryUnescape when that succeeds and taken verbatim otherwise, then
// trimmed of spaces, equals "key" under strings.EqualFold. Then:
//
//  1. rest is the raw query's non-key parameters, byte for byte and in
//     order, joined with '&'. Hence rest has no key parameter, no ';' and no
//     empty parameter, and when raw has no key parameter rest is raw with
//     ';' turned into '&' and empty parameters (leading, trailing or
//     repeated separators) dropped; in particular rest == raw when raw has
//     none of those.
//  2. key is the value (the text after the first '=', empty without one),
//     percent-decoded when that succeeds, of the first key parameter whose
//     value decodes to a non-empty string; "" if there is none.
//  3. TakeQueryKey(rest) == (rest, ""), and url.ParseQuery(rest) sees no
//     parameter named "key" in any case either.
func FuzzTakeQueryKey(f *testing.F) {
	for _, tt := range []string{
		"", "alt=sse", "alt=sse&key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
		"key=K&alt=sse", "alt=sse;key=K", "%6Bey=K&alt=sse", "%6b%45Y=K", "k%65y=K",
		"KEY=&key=K", "key&key=K", "key", "key=", "key=a%2Bb+c", "key=%zz", "x=%zz&key=K",
		"%zz=1&key=K", " key =K", "key+=K", "%20key%20=K", "%E2%84%AAey=K", "monkey=1&key=K",
		"keys=1&key_=2&kkey=3", "&&key=1&&", ";;", "=", "==key", "key==v=", "a=1;b=2",
		"q=a;b&alt=sse", "%24fields=candidates&alt=json&key=K",
		"pageSize=50&pageToken=Cg0KC2dlbWluaS0xLjU%3D&key=K", "a=%26key%3DK",
	} {
		f.Add(tt)
	}
	isSep := func(r rune) bool { return r == '&' || r == ';' }
	isKey := func(param string) bool {
		name, _, _ := strings.Cut(param, "=")
		if u, err := url.QueryUnescape(name); err == nil {
			name = u
		}
		return strings.EqualFold(strings.TrimSpace(name), "key")
	}
	f.Fuzz(func(t *testing.T, raw string) {
		rest, key := TakeQueryKey(raw)

		// 1. rest is exactly the non-key parameters.
		var kept []string
		wantKey, hasKey := "", false
		for _, param := range strings.FieldsFunc(raw, isSep) {
			if !isKey(param) {
				kept = append(kept, param)
				continue
			}
			hasKey = true
			if wantKey == "" {
				_, v, _ := strings.Cut(param, "=")
				if u, err := url.QueryUnescape(v); err == nil {
					v = u
				}
				wantKey = v
			}
		}
		if want := strings.Join(kept, "&"); rest != want {
			t.Fatalf("TakeQueryKey(%q) rest = %q, want %q", raw, rest, want)
		}
		for _, param := range strings.FieldsFunc(rest, isSep) {
			if isKey(param) {
				t.Fatalf("TakeQueryKey(%q) left key parameter %q in %q", raw, param, rest)
			}
		}
		if strings.ContainsRune(rest, ';') || (rest != "" && slices.Contains(strings.Split(rest, "&"), "")) {
			t.Fatalf("TakeQueryKey(%q) rest %q has ';' or an empty parameter", raw, rest)
		}
		plain := !strings.ContainsRune(raw, ';') && !slices.Contains(strings.Split(raw, "&"), "")
		if !hasKey && plain && raw != "" && rest != raw {
			t.Fatalf("TakeQueryKey(%q) changed a query without key: %q", raw, rest)
		}

		// 2. key.
		if key != wantKey {
			t.Fatalf("TakeQueryKey(%q) key = %q, want %q", raw, key, wantKey)
		}

		// 3. Idempotent, and Go's own query parser agrees no key is left.
		if rest2, key2 := TakeQueryKey(rest); rest2 != rest || key2 != "" {
			t.Fatalf("TakeQueryKey(%q) = %q, %q; want it unchanged", rest, rest2, key2)
		}
		q, _ := url.ParseQuery(rest)
		for name := range q {
			if strings.EqualFold(strings.TrimSpace(name), "key") {
				t.Fatalf("url.ParseQuery(%q) finds %q", rest, name)
			}
		}
	})
}

func TestTakeQueryKey(t *testing.T) {
	tests := []struct{ raw, rest, key string }{
		{"", "", ""},
		{"alt=sse", "alt=sse", ""},
		{"alt=sse&key=K1&x=%2F", "alt=sse&x=%2F", "K1"},
		{"%6Bey=K2&alt=sse", "alt=sse", "K2"},
		{"a=1;key=K3", "a=1", "K3"},
		{"x=%zz&key=K4", "x=%zz", "K4"},
		{"KEY=K5&key=K6", "", "K5"},
		{"monkey=1&key=a%2Bb", "monkey=1", "a+b"},
	}
	for _, tt := range tests {
		rest, key := TakeQueryKey(tt.raw)
		if rest != tt.rest || key != tt.key {
			t.Errorf("TakeQueryKey(%q) = %q, %q; want %q, %q", tt.raw, rest, key, tt.rest, tt.key)
		}
	}
}
