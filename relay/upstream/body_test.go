package upstream

import (
	"io"
	"runtime"
	"testing"
	"weak"
)

// TestBodyReaderLetsGo: the upstream request's body reader yields the body
// once, whole, and holds it no more at its end (the transport keeps the
// reader until the answer is over).
func TestBodyReaderLetsGo(t *testing.T) {
	body := make([]byte, 1<<20)
	for i := range body {
		body[i] = byte(i)
	}
	held := weak.Make(&body[0])
	r := bytesReader(body)
	body = nil
	got, err := io.ReadAll(r)
	if err != nil || len(got) != 1<<20 || got[12345] != byte(12345%256) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	got = nil
	runtime.GC()
	if held.Value() != nil {
		t.Fatal("the reader still holds the body after its end")
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after the end: %d, %v", n, err)
	}
	runtime.KeepAlive(r)
}
