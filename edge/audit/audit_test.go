package audit

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteAndRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l := Open(Config{Path: path, MaxSizeMB: 1})
	big := strings.Repeat("x", 600<<10)
	for i := range 3 { // 3 × 600 KiB in a 1 MiB file: at least one rotation
		if err := l.Write(&Entry{Time: time.Now(), RequestID: "r", Path: big, Status: 200 + i, RequestBody: "secret prompt"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit*.jsonl"))
	if len(files) < 2 {
		t.Fatalf("no rotation: %v", files)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var e Entry
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(data))), &e); err != nil || e.Status != 202 {
		t.Fatalf("last record %+v, %v", e, err)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "secret prompt") {
			t.Fatal("a body was recorded although bodies are off")
		}
	}
}

func TestBodiesWhenSwitchedOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l := Open(Config{Path: path, Bodies: true})
	if err := l.Write(&Entry{RequestBody: "prompt", ResponseBody: "answer"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"request_body":"prompt"`) || !strings.Contains(string(b), `"response_body":"answer"`) {
		t.Fatalf("bodies missing: %s", b)
	}
	var nilLog *Log
	if err := nilLog.Write(&Entry{}); err != nil || nilLog.Close() != nil {
		t.Fatal("a nil Log must be a no-op")
	}
}
