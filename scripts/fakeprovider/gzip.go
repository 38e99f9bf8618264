package fakeprovider

import (
	"compress/gzip"
	"net/http"
	"strings"
	"sync"
)

// gzipWriter compresses a response the way the real APIs do when the
// caller's Accept-Encoding offers gzip: errors, whole bodies and event
// streams alike, a stream flushed (sync-flushed) after every event. A
// relay that lets its client's Accept-Encoding through gets bytes its
// meter cannot read.
type gzipWriter struct {
	http.ResponseWriter
	gz      *gzip.Writer
	started bool
}

// acceptsGzip reports an Accept-Encoding that offers gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// gzipPool keeps compressors between responses: a new one allocates about
// 800 KB, which would make the fake, not the code under test, the largest
// cost in every benchmark that goes through it.
var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

func newGzipWriter(w http.ResponseWriter) *gzipWriter {
	gz := gzipPool.Get().(*gzip.Writer)
	gz.Reset(w)
	return &gzipWriter{ResponseWriter: w, gz: gz}
}

func (g *gzipWriter) WriteHeader(status int) {
	if g.started {
		return
	}
	g.started = true
	h := g.Header()
	h.Del("Content-Length") // the length of the uncompressed body
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	g.ResponseWriter.WriteHeader(status)
}

func (g *gzipWriter) Write(b []byte) (int, error) {
	g.WriteHeader(http.StatusOK)
	return g.gz.Write(b)
}

// FlushError sends what was compressed so far; http.ResponseController
// finds it.
func (g *gzipWriter) FlushError() error {
	g.WriteHeader(http.StatusOK)
	if err := g.gz.Flush(); err != nil {
		return err
	}
	return http.NewResponseController(g.ResponseWriter).Flush()
}

// close ends the gzip stream of a complete response and gives its
// compressor back (a cut response's is dropped).
func (g *gzipWriter) close() {
	_ = g.gz.Close()
	g.gz.Reset(nil)
	gzipPool.Put(g.gz)
	g.gz = nil
}
