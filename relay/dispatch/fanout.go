package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convert"
	"github.com/strait/strait/relay/upstream"
)

// Fan-out: a Chat Completions request for n > 1 choices whose route leads
// to a provider that makes one choice per call (Anthropic, Gemini, the
// Responses API) becomes n calls of one choice, run at once. Each call is
// a whole caller of its own (retries, key rotation, fallbacks, conversion)
// writing the stream it would send the edge into a pipe; the fan-out reads
// the n streams and merges them into the one answer the client gets:
// choice i is call i's, the usage is the n calls' sum, and for a stream
// the chunks interleave as they come, each with its choice's index.
//
// The answer's status is decided once every call has its first byte, so a
// call that fails before that (a 400 the request itself earned, a 429)
// reaches the client as that error with its status, not as an event in a
// 200 stream. A call that fails later ends the stream as the edge ends any
// broken stream, with one in-band error; a call whose stream carries an
// in-band error passes that event on and the stream ends there. Either
// way the other calls are canceled at once.

// DefaultMaxChoices is Config.MaxChoices's default: the most calls one
// request fans out to.
const DefaultMaxChoices = 8

// fanOutChoices is the n of a Chat Completions request, or 1 for any other
// request.
func fanOutChoices(h *proto.RequestHeader, in *upstream.Inbound) int {
	if d, ok := llmapi.ClientDialect(llmapi.Family(h.Family), h.Method, h.Path); !ok || d != llmapi.ChatCompletions ||
		!strings.HasSuffix(h.Path, "/chat/completions") {
		return 1
	}
	return convert.ChatChoices(in.Body)
}

// fanCall is one call of a fan-out: the request of one choice as the
// client would have sent it, and as the first target gets it.
type fanCall struct {
	client, in *upstream.Inbound
	conv       *conversion
}

// prepareFanOut builds the n calls for the route's first target, or ends
// the exchange with a 400 when n is over the limit (the route's, else the
// relay's) or the request cannot be converted.
func (d *Dispatcher) prepareFanOut(in *upstream.Inbound, rt *upstream.Route, n int) ([]fanCall, *proto.End) {
	t, limit := rt.Targets[0], d.cfg.MaxChoices
	if rt.MaxChoices > 0 {
		limit = rt.MaxChoices
	}
	if limit == 1 {
		return nil, &proto.End{Code: proto.CodeBadRequest, Message: "n > 1 is not supported for this model"}
	}
	if n > limit {
		return nil, &proto.End{Code: proto.CodeBadRequest, Message: fmt.Sprintf(
			"n is %d; this model's provider makes one choice per call, and Strait makes at most %d calls for one request", n, limit)}
	}
	body, err := convert.OneChoice(in.Body)
	if err != nil {
		return nil, &proto.End{Code: proto.CodeBadRequest, Message: err.Error()}
	}
	calls := make([]fanCall, n)
	for i := range calls {
		h := *in.Header
		h.BodyLen = int64(len(body))
		client := upstream.ParseInbound(&h, body)
		conv, end := (*conversion)(nil), (*proto.End)(nil)
		in := client
		if needsConversion(&h, t) {
			if in, conv, end = crossFamily(client, t, d.cfg.Conversations); end != nil {
				return nil, end
			}
		}
		calls[i] = fanCall{client: client, in: in, conv: conv}
	}
	return calls, nil
}

// fanMsg is what the fan-out learns of one call.
type fanMsg struct {
	i    int
	head *proto.ResponseHeader // the call's answer began
	// body is an error answer's or a whole answer's body (with its head),
	// or one SSE event of a stream.
	body []byte
	end  *proto.End // the call ended
}

// fanOut runs the calls of one request and merges their answers.
type fanOut struct {
	d      *Dispatcher
	x      *exchange
	route  *upstream.Route
	body   []byte // the client's request body
	stream bool
	subs   []*exchange
	pipes  []*io.PipeReader
	msgs   chan fanMsg
	next   chan struct{} // closed when every call has its first byte: streams may flow
	quit   chan struct{} // closed when the merge is over: readers stop sending
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var errMerged = errors.New("fan-out over")

// fanOut serves the exchange with calls, one per choice.
func (d *Dispatcher) fanOut(ctx context.Context, x *exchange, client *upstream.Inbound, rt *upstream.Route, calls []fanCall) {
	ctx, cancel := context.WithCancel(ctx)
	f := &fanOut{d: d, x: x, route: rt, body: client.Body, stream: client.Stream, cancel: cancel,
		subs: make([]*exchange, len(calls)), pipes: make([]*io.PipeReader, len(calls)),
		msgs: make(chan fanMsg, len(calls)), next: make(chan struct{}), quit: make(chan struct{})}
	x.stats.BytesUp = 0
	for i, c := range calls {
		x.stats.BytesUp += int64(len(c.in.Body))
		f.start(ctx, i, c)
	}
	defer f.stop()
	f.merge()
}

// start runs call i and the reader of its stream.
func (f *fanOut) start(ctx context.Context, i int, call fanCall) {
	pr, pw := io.Pipe()
	sub := &exchange{w: proto.NewWriter(pw), log: f.x.log.With(zap.Int("choice", i)), m: f.x.m, start: f.x.start,
		stats: Stats{End: proto.CodeCanceled}, sub: true}
	f.subs[i], f.pipes[i] = sub, pr
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		c := &caller{d: f.d, x: sub, client: call.client, in: call.in, route: f.route, conv: call.conv}
		c.run(ctx)
		pw.Close()
	}()
	go func() {
		defer f.wg.Done()
		f.read(i, pr)
	}()
}

// stop cancels the calls still running, fails their writes into the
// pipes, waits for every goroutine, and takes the first call's provider
// and timing for the exchange's figures.
func (f *fanOut) stop() {
	f.cancel()
	close(f.quit)
	for _, pr := range f.pipes {
		pr.CloseWithError(errMerged)
	}
	f.wg.Wait()
	f.x.stats.Provider, f.x.stats.Timing = f.subs[0].stats.Provider, f.subs[0].stats.Timing
}

func (f *fanOut) send(m fanMsg) bool {
	select {
	case f.msgs <- m:
		return true
	case <-f.quit:
		return false
	}
}

// read turns call i's stream into messages: its head (with the whole body
// when that is an error or not a stream), then, once every call has its
// head, each SSE event, then its end.
func (f *fanOut) read(i int, pr io.Reader) {
	rd := proto.NewReader(pr)
	defer rd.Release()
	typ, p, err := rd.Next()
	switch {
	case err != nil:
		f.send(fanMsg{i: i, end: &proto.End{Code: proto.CodeCanceled, Message: "the call stopped"}})
		return
	case typ == proto.FrameEnd:
		end, err := proto.ParseEnd(p)
		if err != nil {
			end = &proto.End{Code: proto.CodeInternal, Message: err.Error()}
		}
		f.send(fanMsg{i: i, end: end})
		return
	case typ != proto.FrameResponse:
		f.send(fanMsg{i: i, end: &proto.End{Code: proto.CodeInternal, Message: "unexpected " + typ.String() + " frame"}})
		return
	}
	h, err := proto.ParseResponseHeader(p)
	if err != nil {
		f.send(fanMsg{i: i, end: &proto.End{Code: proto.CodeInternal, Message: err.Error()}})
		return
	}
	body := rd.Body()
	if h.Status >= 300 || !isEventStream(h.Header) {
		b, err := io.ReadAll(io.LimitReader(body, convert.MaxBody+1))
		end := endOf(err)
		if len(b) > convert.MaxBody {
			end = &proto.End{Code: proto.CodeUpstreamBroken, Message: "an answer too large to merge"}
		}
		f.send(fanMsg{i: i, head: h, body: b, end: end})
		return
	}
	if !f.send(fanMsg{i: i, head: h}) {
		return
	}
	select {
	case <-f.next:
	case <-f.quit:
		return
	}
	var buf []byte
	scanned := 0
	for {
		chunk, err := body.Chunk()
		buf = append(buf, chunk...)
		for {
			end, resume := llmapi.EventEnd(buf, scanned, err != nil)
			if end < 0 {
				scanned = resume
				break
			}
			if !f.send(fanMsg{i: i, body: append([]byte(nil), buf[:end]...)}) {
				return
			}
			buf, scanned = buf[end:], 0
		}
		if err != nil {
			f.send(fanMsg{i: i, end: endOf(err)})
			return
		}
	}
}

// endOf is the End a body's read error stands for: OK for io.EOF (and
// nil, io.ReadAll's clean end).
func endOf(err error) *proto.End {
	var end *proto.End
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return &proto.End{}
	case errors.As(err, &end):
		return end
	}
	return &proto.End{Code: proto.CodeCanceled, Message: "the call stopped: " + err.Error()}
}

// merge waits for every call's head, then answers: the first failure as
// it is, or the merged answer.
func (f *fanOut) merge() {
	heads := make([]fanMsg, len(f.subs))
	for range f.subs {
		m := <-f.msgs
		if m.head == nil || m.head.Status >= 300 || m.end != nil && m.end.Code != proto.CodeOK {
			f.fail(m)
			return
		}
		// A stream's head comes alone (its events follow), a whole
		// answer's with its body and end: an answer of the other kind
		// than asked cannot be merged.
		if whole := m.end != nil; whole == f.stream {
			f.x.ended(endUpstreamError)
			f.x.finish(proto.End{Code: proto.CodeUpstreamBroken, Message: "a call's answer is not the kind asked for (stream or whole)"})
			return
		}
		heads[m.i] = m
	}
	if f.stream {
		f.mergeStream(heads[0].head)
		return
	}
	bodies := make([][]byte, len(heads))
	for i, m := range heads {
		bodies[i] = m.body
	}
	merged, err := convert.MergeChatResponses(bodies)
	if err != nil {
		f.x.ended(endUpstreamError)
		f.x.finish(proto.End{Code: proto.CodeUpstreamBroken, Message: "merging the answers: " + err.Error()})
		return
	}
	h := &proto.ResponseHeader{Status: heads[0].head.Status, Header: heads[0].head.Header.Clone()}
	h.Header.Del("Content-Length")
	f.x.w.Hold() // the header leaves with the body
	if f.respond(h, merged) {
		f.x.ended(endCompleted)
		f.x.finish(proto.End{})
	}
}

// respond writes the answer's head and a body; false when the edge is gone.
func (f *fanOut) respond(h *proto.ResponseHeader, body []byte) bool {
	f.x.stats.Status = h.Status
	if err := f.x.w.WriteResponse(h); err != nil {
		f.x.ended(endClientGone)
		return false
	}
	if len(body) > 0 && !f.write(body) {
		return false
	}
	return true
}

// write sends b to the edge at once.
func (f *fanOut) write(b []byte) bool {
	_, err := f.x.w.Write(b)
	if err == nil {
		err = f.x.w.Flush()
	}
	if err != nil {
		f.x.ended(endClientGone)
		return false
	}
	f.x.stats.BytesDown += int64(len(b))
	return true
}

// fail answers with call m's failure: its error answer as it is (already
// in the client's format), or its End.
func (f *fanOut) fail(m fanMsg) {
	f.x.log.Info("a call of the fan-out failed; the others are canceled", zap.Int("choice", m.i))
	f.x.ended(endUpstreamError)
	if m.head == nil || m.head.Status < 300 {
		// No answer, or a whole answer that broke off: the End alone,
		// which the edge answers with an error of the client's format.
		f.x.finish(*m.end)
		return
	}
	f.x.w.Hold()
	if f.respond(m.head, m.body) {
		f.x.finish(*m.end)
	}
}

// mergeStream sends the streams of every call as one, chunk by chunk.
func (f *fanOut) mergeStream(h *proto.ResponseHeader) {
	if !f.respond(&proto.ResponseHeader{Status: h.Status, Header: h.Header.Clone()}, nil) {
		return
	}
	close(f.next)
	merge := convert.NewChatStreamMerge(f.body)
	for ended := 0; ended < len(f.subs); {
		m := <-f.msgs
		if m.end != nil {
			if m.end.Code != proto.CodeOK {
				f.x.log.Info("a call of the fan-out broke off; the others are canceled", zap.Int("choice", m.i))
				f.x.ended(endUpstreamError)
				f.x.finish(*m.end)
				return
			}
			ended++
			continue
		}
		out, failed, err := merge.Event(m.i, m.body)
		if err != nil {
			f.x.ended(endUpstreamError)
			f.x.finish(proto.End{Code: proto.CodeUpstreamBroken, Message: "merging the answers: " + err.Error()})
			return
		}
		if len(out) > 0 && !f.write(out) {
			return
		}
		if failed {
			f.x.ended(endUpstreamError)
			f.x.finish(proto.End{})
			return
		}
	}
	if f.write(merge.End()) {
		f.x.ended(endCompleted)
		f.x.finish(proto.End{})
	}
}
