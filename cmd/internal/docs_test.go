package internal_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// markdownLink matches an inline Markdown link or image target: [text](target).
var markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocLinks checks every relative link in the repository's Markdown files:
// the file or folder it names exists, and a #fragment names a heading of the
// target file. The README is a front door that points into the tree, so a
// moved file must not leave a dead link behind.
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..")
	var docs []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			docs = append(docs, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) < 5 {
		t.Fatalf("found only %d Markdown files under %s", len(docs), root)
	}
	for _, doc := range docs {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllStringSubmatch(string(src), -1) {
			if msg := checkLink(doc, m[1]); msg != "" {
				t.Errorf("%s: link %q: %s", doc, m[1], msg)
			}
		}
	}
}

// checkLink returns why target, linked from doc, is dead, or "".
func checkLink(doc, target string) string {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return ""
	}
	file, fragment, _ := strings.Cut(target, "#")
	path := doc
	if file != "" {
		path = filepath.Join(filepath.Dir(doc), file)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "no such file"
	}
	if fragment == "" || st.IsDir() {
		return ""
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	for _, line := range strings.Split(string(src), "\n") {
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") && headingAnchor(h) == fragment {
			return ""
		}
	}
	return "no heading with that anchor"
}

// headingAnchor is the fragment GitHub gives a heading: lower case, spaces
// to hyphens, punctuation other than hyphens and underscores dropped.
func headingAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 0x7f:
			b.WriteRune(r)
		}
	}
	return b.String()
}
