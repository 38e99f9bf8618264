package llmapi

// Steps over JSON that json.Valid has already accepted, with no syntax or
// bounds checks of their own. The request parser here and the edge's usage
// meter read request bodies and answer events in place on every request
// and every event, instead of decoding them, and share these steps.

// SkipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString steps over the string whose opening quote is b[i]: it returns
// the index after the closing quote and whether the string has an escape.
func SkipString(b []byte, i int) (end int, escaped bool) {
	for i++; b[i] != '"'; i++ {
		if b[i] == '\\' {
			escaped = true
			i++
		}
	}
	return i + 1, escaped
}

// SkipLiteral steps over the number, true, false or null at b[i].
func SkipLiteral(b []byte, i int) int {
	for i < len(b) && !endsLiteral(b[i]) {
		i++
	}
	return i
}

// SkipValue steps over the value that starts at b[i].
func SkipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		i, _ = SkipString(b, i)
		return i
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i, _ = SkipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			i++
			if depth == 0 {
				return i
			}
		}
	}
	return SkipLiteral(b, i)
}

// endsLiteral reports whether c ends a number, true, false or null.
func endsLiteral(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
