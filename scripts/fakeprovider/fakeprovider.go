// Package fakeprovider is a local stand-in for the OpenAI, Anthropic and
// Gemini HTTP APIs. It speaks their wire formats closely enough for the
// official Go SDKs (openai-go, anthropic-sdk-go, genai), generates
// deterministic text ("tok0 tok1 …", see [Text]) at a configurable pace,
// injects faults, and records every request it receives so tests can assert
// on exactly what travelled through the edge, the tunnel and the relay.
//
// The family of a request is chosen by its path: /v1beta/… and
// /v1/models/{model}:{method} are Gemini, /v1/messages… is Anthropic, and
// /v1/models… is Anthropic when the request carries anthropic-version or
// x-api-key, Gemini when it carries x-goog-api-key or ?key=, else OpenAI.
// Everything else is OpenAI.
//
// A single request can be varied with headers: X-Fake-Tokens: N,
// X-Fake-Interval-Ms: N, X-Fake-Fault: 401|429|500|529|…|hang and
// X-Fake-Retry-After: seconds. Where headers are awkward, the model name
// selects a fault: fail-401, fail-429, fail-500, fail-529 (any fail-NNN) or
// hang. An injected 401 is a revoked key, in each family's words for it.
//
// Like a real account it refuses what its keys do not own, as the real APIs
// do: an OpenAI-Organization or OpenAI-Project other than OwnedOrganization
// and OwnedProject (401 mismatched_*), a Gemini fileData naming a file
// (403 PERMISSION_DENIED); it answers a wrong Gemini key with 400
// API_KEY_INVALID. It keeps one file store for all its keys (OpenAI
// /v1/files: upload, list, get, delete), and gzips its answers when the
// caller offers gzip (Config.NoCompression turns that off).
package fakeprovider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Config sets the behaviour of a Server. The zero value is a usable fake:
// eight tokens per completion, no delay, any non-empty key, no faults.
type Config struct {
	// Tokens is the number of text pieces per completion; zero means 8.
	// A request's max-tokens parameter lowers it (the response then ends with
	// the family's "length" reason), and X-Fake-Tokens overrides it.
	Tokens int
	// Interval is the delay between two streamed tokens; zero means none.
	// Non-streaming responses wait (tokens-1)*Interval before answering, so
	// both modes take the same time to finish. X-Fake-Interval-Ms overrides it.
	Interval time.Duration
	// Keys are the accepted provider keys per family.
	Keys Keys
	// Fault is applied to requests for known endpoints; the zero value is no
	// fault. See [Fault.Count] for limiting it to the next n requests.
	Fault Fault
	// NoCompression answers uncompressed whatever the Accept-Encoding; by
	// default the fake gzips, as the real APIs do, when it is offered.
	NoCompression bool
}

// Keys are the provider keys the fake accepts. An empty string for a family
// accepts any non-empty key; a missing key is always rejected with 401.
type Keys struct {
	OpenAI    string // compared with "Authorization: Bearer <key>"
	Anthropic string // compared with x-api-key (or "Authorization: Bearer <key>")
	Gemini    string // compared with x-goog-api-key
}

// Fault makes the fake fail instead of answering; Hang takes precedence over
// Status. The zero value is no fault.
type Fault struct {
	// Status, when non-zero, answers with this HTTP status and an error body
	// in the family's format (e.g. 401, 429, 500, 503, 529).
	Status int
	// RetryAfter is sent with status 429 as Retry-After in whole seconds
	// (rounded up) and, for OpenAI, as retry-after-ms. Zero means one second,
	// because the real APIs always tell a rate-limited client when to come
	// back; a negative value omits both headers. Other statuses send the
	// headers only when RetryAfter is positive.
	RetryAfter time.Duration
	// Hang accepts the request and sends nothing (not even headers) until the
	// client goes away; the request then reports Canceled.
	Hang bool
	// Count limits the fault to the next Count requests; zero means every
	// request until the fault is replaced.
	Count int
}

func (f Fault) active() bool { return f.Status != 0 || f.Hang }

// Server is the fake provider. It implements http.Handler and is safe for
// concurrent use.
type Server struct {
	cfg Config

	mu        sync.Mutex
	fault     Fault
	remaining int // requests left for a Count-limited fault
	seq       int64
	records   []*record
	changed   chan struct{} // closed and replaced whenever records grows
	keyFaults               // see faults.go
	files     fileStore     // see files.go
}

// New returns a Server with the given configuration.
func New(cfg Config) *Server {
	if cfg.Tokens == 0 {
		cfg.Tokens = 8
	}
	s := &Server{cfg: cfg, changed: make(chan struct{})}
	s.SetFault(cfg.Fault)
	return s
}

// SetFault replaces the current fault; the zero Fault switches faults off.
// A Count-limited fault starts counting afresh.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault, s.remaining = f, f.Count
}

// takeFault returns the configured fault for one request and consumes one
// unit of a Count-limited fault.
func (s *Server) takeFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fault.active() {
		return Fault{}
	}
	if s.fault.Count == 0 {
		return s.fault
	}
	if s.remaining == 0 {
		return Fault{}
	}
	s.remaining--
	return s.fault
}

// Requests returns a copy of every recorded request in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *Server) snapshotLocked() []Request {
	out := make([]Request, len(s.records))
	for i, rec := range s.records {
		out[i] = rec.req
	}
	return out
}

// Reset forgets all recorded requests. Requests still in flight finish
// normally but are no longer listed.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = nil
}

// WaitRequests blocks until at least n requests were recorded (since the last
// Reset) or ctx ends, and returns everything recorded so far. A request is
// recorded once its body has been read, before it is answered.
func (s *Server) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	for {
		s.mu.Lock()
		if len(s.records) >= n {
			out := s.snapshotLocked()
			s.mu.Unlock()
			return out, nil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return s.Requests(), ctx.Err()
		}
	}
}

// add stores rec and wakes WaitRequests callers; it returns the request's
// sequence number, which makes generated ids unique and deterministic.
func (s *Server) add(rec *record) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.records = append(s.records, rec)
	close(s.changed)
	s.changed = make(chan struct{})
	return s.seq
}

// ServeHTTP records the request and answers it in the wire format of the
// family its path belongs to.
//
// A response that could not be completed (the client went away, or the
// server is shutting down under a hang or a stream) ends with
// panic(http.ErrAbortHandler), which net/http turns into a silently dropped
// connection or stream: otherwise a hang would end in an empty 200 and a
// cut stream would look like a complete one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	received := time.Now()
	d := dialectOf(r)
	body, readErr := readBody(r)
	rec := newRecord(r, d, body, received)
	var gz *gzipWriter
	if acceptsGzip(r) && !s.cfg.NoCompression {
		gz = newGzipWriter(w)
		w = gz
	}
	c := &call{w: w, r: r, ctx: r.Context(), d: d, rec: rec, body: body, seq: s.add(rec), start: received, files: &s.files}
	defer rec.finish()
	c.settings(s.cfg)
	d.setHeaders(w.Header(), c)
	s.serve(c, readErr)
	if !rec.isComplete() {
		panic(http.ErrAbortHandler)
	}
	if gz != nil {
		gz.close()
	}
}

// serve runs the checks every endpoint shares, in the order the real APIs
// apply them (request, credentials, endpoint, quota), then the endpoint.
func (s *Server) serve(c *call, readErr error) {
	if readErr != nil {
		c.fail(bodyError(readErr))
		return
	}
	if e := c.d.authenticate(c.r, s.cfg.Keys); e != nil {
		c.fail(e)
		return
	}
	if f, ok := s.takeKeyFault(c.r); ok {
		c.applyFault(f)
		return
	}
	if e := c.d.foreign(c); e != nil {
		c.fail(e)
		return
	}
	h := c.d.route(c.r)
	if h == nil {
		c.fail(&apiError{status: http.StatusNotFound, message: "Invalid URL (" + c.r.Method + " " + c.r.URL.Path + ")"})
		return
	}
	if f, ok := requestFault(c.r, c.rec.req.Model); ok {
		c.applyFault(f)
		return
	}
	if f := s.takeFault(); f.active() {
		c.applyFault(f)
		return
	}
	if serveScenario(c) {
		return
	}
	h(c)
}

// ListenAndServe serves a fake configured by cfg on addr until ctx ends. It
// speaks HTTP/1.1 and unencrypted HTTP/2 (prior knowledge), calls ready (if
// not nil) with the bound address once it accepts connections, and returns
// nil after a clean shutdown. Ending ctx also cancels every in-flight request
// so hanging and streaming handlers stop at once.
func ListenAndServe(ctx context.Context, addr string, cfg Config, ready func(net.Addr)) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:           New(cfg),
		Protocols:         protocols,
		ReadHeaderTimeout: 10 * time.Second,
		// Request contexts derive from ctx, so a hang fault cannot hold the
		// shutdown hostage.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
