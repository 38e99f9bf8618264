package edge

import (
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/proto"
)

// TestBrokenAnswerNotCached: an answer whose tunnel stream broke off
// mid-body is never kept, although its status (200) went out and the
// forwarder, aborting the handler, never returned a Result with its
// error. It used to be: the model listing's first half was served from
// the cache, as a whole 200, to the client's retry.
func TestBrokenAnswerNotCached(t *testing.T) {
	const listing = `{"object":"list","data":[{"id":"gpt-4o-mini","object":"model"}]}`
	relay := startStubRelay(t)
	var calls atomic.Int32
	relay.script = func(w *proto.Writer) {
		_ = w.WriteResponse(&proto.ResponseHeader{Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}}})
		if calls.Add(1) == 1 {
			_, _ = w.Write([]byte(listing[:20])) // and the stream ends, without End
			return
		}
		_, _ = w.Write([]byte(listing))
		_ = w.WriteEnd(proto.End{})
	}
	r := newEdgeRigTo(t, relay, Config{}, entry("app", auth.Client{}))
	get := func() (body, cache string, err error) {
		req, err := http.NewRequest(http.MethodGet, r.url+"/v1/models", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer key-of-app")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), resp.Header.Get("X-Strait-Cache"), err
	}
	// The connection is cut once the handler, its accounting included,
	// is done: the error means the response cache has had its say.
	if body, _, err := get(); err == nil {
		t.Fatalf("first listing %q arrived whole; want it cut", body)
	}
	body, cache, err := get()
	if err != nil || body != listing || cache != "miss" {
		t.Fatalf("second listing %q (cache %q, %v); want the whole listing from the relay (miss)", body, cache, err)
	}
}
