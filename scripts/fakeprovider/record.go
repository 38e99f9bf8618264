package fakeprovider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxBody bounds a request body. Requests with inline images run to tens of
// megabytes; the real APIs cap them at a few tens of MB as well.
const maxBody = 64 << 20

// Request is one recorded request, as the fake received it.
type Request struct {
	Family   string      // "openai", "anthropic" or "gemini"
	Method   string      // HTTP method
	Path     string      // URL path, decoded
	RawQuery string      // URL query, encoded; a Gemini ?key= shows up here
	Header   http.Header // as received, including the auth headers
	Body     []byte      // the whole body (nil when it exceeded the limit)
	Model    string      // "model" from the JSON body, or from a Gemini path
	Stream   bool        // "stream": true, or a Gemini streamGenerateContent call
	Received time.Time   // when the handler started
	// Done is closed when the handler has returned, i.e. the response is
	// complete or abandoned.
	Done <-chan struct{}
	// Canceled reports when the client went away before the response was
	// complete. It stays (zero, false) for answered requests.
	Canceled func() (time.Time, bool)
}

// record is the mutable bookkeeping behind one Request.
type record struct {
	req  Request
	done chan struct{}

	mu         sync.Mutex
	completed  bool
	canceled   bool
	canceledAt time.Time
}

func newRecord(r *http.Request, d dialect, body []byte, received time.Time) *record {
	rec := &record{done: make(chan struct{})}
	model, stream := d.describe(r, body)
	rec.req = Request{
		Family:   d.name(),
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Header:   r.Header.Clone(),
		Body:     body,
		Model:    model,
		Stream:   stream,
		Received: received,
		Done:     rec.done,
		Canceled: rec.cancellation,
	}
	return rec
}

// complete marks the response as fully written; the client leaving later
// no longer counts as a cancellation.
func (rec *record) complete() {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.completed = true
}

func (rec *record) isComplete() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.completed
}

// finish runs when the handler returns: a response that never completed was
// abandoned because the client went away (or the server shut down).
func (rec *record) finish() {
	rec.mu.Lock()
	if !rec.completed && !rec.canceled {
		rec.canceled, rec.canceledAt = true, time.Now()
	}
	rec.mu.Unlock()
	close(rec.done)
}

// cancellation implements Request.Canceled.
func (rec *record) cancellation() (time.Time, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.canceledAt, rec.canceled
}

// readBody reads the whole body: the fake must consume uploads of tens of
// MB like the real APIs, and the server only notices a client going away
// once the body is drained.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return body, err
	}
	if len(body) > maxBody {
		return nil, errTooLarge
	}
	return body, nil
}

var errTooLarge = errors.New("request body too large")

// bodyError turns a body read failure into the response the client would
// get (it is usually gone already).
func bodyError(err error) *apiError {
	if errors.Is(err, errTooLarge) {
		return &apiError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("Request exceeds the maximum size of %d bytes", maxBody)}
	}
	return &apiError{status: http.StatusBadRequest, message: "Could not read the request body: " + err.Error()}
}

// jsonModel extracts the fields every JSON request family shares.
func jsonModel(body []byte) (model string, stream bool) {
	var v struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &v) // a malformed body is reported by the endpoint
	return v.Model, v.Stream
}
