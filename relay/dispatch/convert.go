package dispatch

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convert"
	"github.com/strait/strait/relay/convstore"
	"github.com/strait/strait/relay/upstream"
)

// conversion is a request whose route leads to a provider of another API
// family than the client's (an OpenAI SDK asking for claude-*): the request
// goes out converted, and the answer comes back converted, event by event.
type conversion struct {
	plan   *convert.Plan
	family string  // the client's family: keep-alives must be in its format
	keep   *keeper // records a Responses conversation; nil when none is kept
}

// needsConversion: the provider speaks another family; or the client uses
// the Responses API and the provider is OpenAI-compatible, which means Chat
// Completions only (DeepSeek, vLLM, …); or the client uses Chat Completions
// and the model is served only on the Responses API.
func needsConversion(h *proto.RequestHeader, t upstream.Target) bool {
	if t.Provider.Family() != h.Family {
		return true
	}
	d, ok := llmapi.ClientDialect(llmapi.Family(h.Family), h.Method, h.Path)
	return ok && (d == llmapi.Responses && t.Provider.Kind == upstream.OpenAICompatible ||
		d == llmapi.ChatCompletions && t.Provider.ResponsesOnly(t.Model))
}

// providerDialect is the API the target is called with for a request to
// path: OpenAI counts tokens on the Responses API only.
func providerDialect(t upstream.Target, path string) llmapi.Dialect {
	native := t.Provider.Kind == upstream.OpenAI || t.Provider.Kind == upstream.AzureOpenAI
	if t.Provider.ResponsesOnly(t.Model) || native && convert.IsCountPath(path) {
		return llmapi.Responses
	}
	return llmapi.Family(t.Provider.Family()).Dialect()
}

// crossFamily converts the client's request for target t. The returned
// Inbound is what the provider gets; retries and key rotation then work on
// it as on any other request. A request that cannot be converted ends with
// a clear 400 in the client's own format.
func crossFamily(in *upstream.Inbound, t upstream.Target, store convstore.Backend) (*upstream.Inbound, *conversion, *proto.End) {
	h := in.Header
	client, ok := llmapi.ClientDialect(llmapi.Family(h.Family), h.Method, h.Path)
	if !ok {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: fmt.Sprintf(
			"model %q is served by the %s provider %q; %s %s cannot be converted from the %s API format",
			in.Model, llmapi.Family(t.Provider.Family()).Name(), t.Provider.Name, h.Method, h.Path, llmapi.Family(h.Family).Name())}
	}
	body, keep := in.Body, (*keeper)(nil)
	if client == llmapi.Responses {
		var end *proto.End
		if body, keep, end = resolvePrevious(store, body); end != nil {
			return nil, nil, end
		}
	}
	plan, err := convert.NewPlanPath(client, providerDialect(t, h.Path), h.Path, h.RawQuery, body, t.Model)
	if err != nil {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: err.Error()}
	}
	out := *h
	out.Family, out.Method, out.Path, out.RawQuery = t.Provider.Family(), http.MethodPost, plan.Path, plan.RawQuery
	out.Header = h.Header.Clone()
	plan.Header(out.Header)
	out.BodyLen = int64(len(plan.Body))
	return upstream.ParseInbound(&out, plan.Body), &conversion{plan: plan, family: h.Family, keep: keep}, nil
}

// converted is the client's view of a provider answer being converted.
type converted struct {
	status int
	header http.Header
	body   io.Reader // the converted body; each Read is one event
	err    error     // the answer could not be converted at all
	stop   func()    // ends the conversion and waits for its goroutine
}

// respond starts converting a. The converter runs in its own goroutine and
// hands each converted event through a pipe, so the pump's idle limit,
// keep-alives and one-frame-per-read apply to the converted stream as to
// any other. stop must be called before a's body is closed.
func (cv *conversion) respond(a *answer) converted {
	pr, pw := io.Pipe()
	w := &pipeWriter{pw: pw, hdr: make(chan converted, 1)}
	var out convert.ResponseWriter = w
	if cv.keep != nil {
		out = &keepWriter{ResponseWriter: w, k: cv.keep}
	}
	done := make(chan struct{})
	// A whole answer is read to its end before its header exists, so
	// before the pump's idle limit runs: idleBody bounds that read. An
	// event stream's header leaves with its first event, and the pump's
	// limit covers it from there.
	body, stopIdle := io.Reader(a.resp.Body), func() {}
	if !isEventStream(a.resp.Header) {
		ib := newIdleBody(a.resp.Body, a.target.Provider.Timeouts().Idle, a.cancel)
		body, stopIdle = ib, ib.stop
	}
	go func() {
		defer close(done)
		defer stopIdle()
		err := cv.plan.Respond(a.resp.StatusCode, a.resp.Header, io.MultiReader(bytes.NewReader(a.first), body), out)
		if !w.sent {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			w.hdr <- converted{err: err}
		}
		pw.CloseWithError(err) // nil: the client's reader sees io.EOF
	}()
	c := <-w.hdr
	c.body = pr
	c.stop = func() {
		pr.Close() // fails a blocked pipe write
		a.cancel() // fails a blocked upstream read
		<-done
	}
	return c
}

// pipeWriter is the convert.ResponseWriter that feeds respond's pipe.
type pipeWriter struct {
	pw   *io.PipeWriter
	hdr  chan converted
	sent bool
}

func (w *pipeWriter) WriteHeader(status int, h http.Header) error {
	w.sent = true
	w.hdr <- converted{status: status, header: h}
	return nil
}

func (w *pipeWriter) Write(p []byte) error {
	_, err := w.pw.Write(p)
	return err
}
