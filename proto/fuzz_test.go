package proto

// Fuzz targets: one per decoder. Each is seeded from the encoder's output for
// realistic traffic (OpenAI-, Anthropic- and Gemini-shaped requests and
// answers) plus edge cases, and checks more than "no panic":
//
//   - whatever decodes re-encodes to a payload no longer than the input that
//     decodes to a reflect.DeepEqual value (non-canonical varints and
//     duplicate header names only ever make the input longer);
//   - every rejection is ErrMalformed;
//   - decoding allocates at most allocFactor bytes per payload byte (plus a
//     small constant), whatever counts and lengths the payload claims.
//
// Run one with, e.g.
//
//	go test ./proto -run '^$' -fuzz '^FuzzRequestHeader$' -fuzztime 3m
//
// Interesting inputs found so far live in testdata/fuzz/<FuzzName>/ and are
// replayed by every plain `go test`.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// allocFactor bounds the bytes a decoder may allocate per payload byte. The
// decoded form is inherently bigger than the wire form: a one-byte empty
// header value becomes a 16-byte string header, and a four-byte header entry
// with a distinct two-byte name a map slot, which with the map's growth
// comes to up to ~48 bytes per payload byte. So this is a generous multiple
// (TestDecodeAllocBound holds forged inputs to much less); what it rules out
// is allocation driven by claimed counts or lengths instead of bytes present.
const (
	allocFactor = 64
	allocSlack  = 4 << 10
)

// maxFuzzInput is the longest input FuzzRequestHeader, FuzzResponseHeader
// and FuzzFrames look at; longer ones return at once, so they never count as
// new coverage. Decoding is one linear pass: extra length only reaches
// higher loop-count coverage buckets, and each such input then cost a
// minute of minimising (the minimiser is quadratic in the length) in which
// nothing was fuzzed. Frames at the real limits are TestMaxFrames' job, and
// allocation at 1 MiB TestDecodeAllocBound's.
const maxFuzzInput = 1 << 10

// allocated returns the bytes f allocates on the heap. ReadMemStats stops the
// world and flushes the per-P caches, so the figure is exact, except that it
// also counts whatever other goroutines allocate meanwhile (the fuzzing
// worker's own machinery does, now and then).
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// leastAllocated runs f up to tries times and returns the smallest figure,
// stopping early once one is within limit. f must be repeatable; noise from
// other goroutines only ever adds, so the minimum is f's own allocation.
func leastAllocated(f func(), limit uint64, tries int) uint64 {
	least := uint64(math.MaxUint64)
	for range tries {
		if least = min(least, allocated(f)); least <= limit {
			break
		}
	}
	return least
}

// onePInFuzzWorker makes a fuzzing worker process (not the coordinator, not
// a plain go test) run on one P. Every input's allocation check stops the
// world twice, and with several Ps that handshake costs more than the
// decoding itself: on two cores it cut execs/sec threefold and made the
// minimiser, which runs O(n²) candidates, stall fuzzing for its full minute.
func onePInFuzzWorker() {
	onePOnce.Do(func() {
		if w := flag.Lookup("test.fuzzworker"); w != nil && w.Value.String() == "true" {
			runtime.GOMAXPROCS(1)
		}
	})
}

var onePOnce sync.Once

// checkAllocBound runs decode, which must be repeatable, and fails if it
// allocates more than allocFactor bytes per payload byte plus allocSlack.
func checkAllocBound(t *testing.T, what string, payload int, decode func()) {
	t.Helper()
	limit := uint64(allocFactor*payload + allocSlack)
	if got := leastAllocated(decode, limit, 3); got > limit {
		t.Fatalf("%s: decoding %d bytes allocated %d bytes (limit %d)", what, payload, got, limit)
	}
}

// --- seeds -----------------------------------------------------------------

func seedRequests() []*RequestHeader {
	return []*RequestHeader{
		sampleRequest(),
		{ // OpenAI Python SDK, non-streaming chat completion
			ID: "01JD4Z6WQ9V7X3M2K8N5R1T0YB", Family: "openai", Method: "POST",
			Path: "/v1/chat/completions",
			Header: http.Header{
				"Accept":                      {"application/json"},
				"Accept-Encoding":             {"gzip, deflate"},
				"Content-Type":                {"application/json"},
				"User-Agent":                  {"OpenAI/Python 1.54.4"},
				"X-Stainless-Arch":            {"x64"},
				"X-Stainless-Lang":            {"python"},
				"X-Stainless-Os":              {"Linux"},
				"X-Stainless-Package-Version": {"1.54.4"},
				"X-Stainless-Retry-Count":     {"0"},
				"X-Stainless-Runtime":         {"CPython"},
				"Openai-Organization":         {"org-4mXq9bVtK2"},
			},
			BodyLen: 187,
		},
		{ // OpenAI-compatible provider behind a /{provider} prefix, streaming
			ID: "r-2", Family: "openai", Provider: "deepseek", Method: "POST",
			Path:    "/v1/chat/completions",
			Header:  http.Header{"Accept": {"text/event-stream"}, "Content-Type": {"application/json"}},
			BodyLen: -1,
		},
		{ // model listing: no body, empty header map
			ID: "r-3", Family: "openai", Method: "GET", Path: "/v1/models",
			Header: http.Header{}, BodyLen: 0,
		},
		{ // Anthropic Messages API with multi-value beta header
			ID: "msg-7f3a", Family: "anthropic", Method: "POST", Path: "/v1/messages",
			Header: http.Header{
				"Anthropic-Version": {"2023-06-01"},
				"Anthropic-Beta":    {"prompt-caching-2024-07-31", "max-tokens-3-5-sonnet-2024-07-15"},
				"Content-Type":      {"application/json"},
				"Accept":            {"application/json"},
				"User-Agent":        {"Anthropic/Python 0.39.0"},
			},
			BodyLen: 1024,
		},
		{
			ID: "msg-7f3b", Family: "anthropic", Provider: "bedrock", Method: "POST",
			Path:    "/v1/messages/count_tokens",
			Header:  http.Header{"Anthropic-Version": {"2023-06-01"}, "Content-Type": {"application/json"}},
			BodyLen: 64,
		},
		{ // Gemini streaming: the query must reach the provider unchanged
			ID: "g-1", Family: "gemini", Method: "POST",
			Path:     "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
			RawQuery: "alt=sse",
			Header: http.Header{
				"Content-Type":      {"application/json"},
				"X-Goog-Api-Client": {"google-genai-sdk/1.2.0 gl-python/3.12.7"},
				"User-Agent":        {"google-genai-sdk/1.2.0 gl-python/3.12.7"},
			},
			BodyLen: -1,
		},
		{
			ID: "g-2", Family: "gemini", Provider: "vertex", Method: "POST",
			Path:     "/v1beta/models/gemini-1.5-pro:generateContent",
			RawQuery: "%24fields=candidates&alt=json",
			Header:   http.Header{"Content-Type": {"application/json; charset=utf-8"}},
			BodyLen:  4096,
		},
		// everything empty
		{Header: http.Header{}},
		// headers with no values, empty values, many values, odd bytes
		{
			Method: "POST", Path: "/",
			Header: http.Header{
				"X-Empty":         {},
				"X-Blank":         {""},
				"X-Forwarded-For": {"10.0.0.1", "10.0.0.2", "10.0.0.3", "::1"},
				"Accept":          {"text/event-stream", "application/json"},
				"":                {"nameless"},
				"X-Bin":           {"\x00\xff\r\n"},
				"x-lower":         {"not canonical"},
			},
			BodyLen: math.MaxInt64,
		},
		// lengths at the 1/2-byte uvarint boundary and a long value. Frames
		// near the real limits are in TestMaxFrames: the minimiser is
		// quadratic in the input's length, so seeds of a few KiB make the
		// fuzzer spend its time minimising their descendants.
		{
			ID: strings.Repeat("i", 127), Family: strings.Repeat("f", 128), Method: "PATCH",
			Path:     "/" + strings.Repeat("p", 126),
			RawQuery: "alt=sse&" + strings.Repeat("q", 120),
			Header:   http.Header{"X-Long": {strings.Repeat("v", 200)}},
			BodyLen:  math.MinInt64,
		},
	}
}

func seedResponses() []*ResponseHeader {
	return []*ResponseHeader{
		{ // OpenAI streaming
			Status: 200,
			Header: http.Header{
				"Content-Type":                   {"text/event-stream; charset=utf-8"},
				"Cache-Control":                  {"no-cache, must-revalidate"},
				"X-Request-Id":                   {"req_8a1f0c2e7d3b4c5a9e6f"},
				"Openai-Processing-Ms":           {"212"},
				"X-Ratelimit-Remaining-Requests": {"9999"},
				"X-Ratelimit-Remaining-Tokens":   {"1999820"},
			},
		},
		{ // Anthropic JSON
			Status: 200,
			Header: http.Header{
				"Content-Type":                           {"application/json"},
				"Request-Id":                             {"req_011CZ7Fq9n8p"},
				"Anthropic-Ratelimit-Requests-Remaining": {"49"},
				"Set-Cookie":                             {"a=1; Path=/", "b=2; Path=/; HttpOnly"},
			},
		},
		{Status: 429, Header: http.Header{"Retry-After": {"3"}, "Content-Type": {"application/json"}}},
		{Status: 529, Header: http.Header{"Content-Type": {"application/json"}, "X-Should-Retry": {"true"}}},
		{Status: 503, Header: http.Header{"Content-Type": {"application/json; charset=UTF-8"}, "Vary": {"Origin", "X-Origin", "Referer"}}},
		{Status: 204, Header: http.Header{}},
		{Status: 100, Header: http.Header{"X-Empty": {}, "X-Blank": {""}}},
		{Status: 999, Header: http.Header{"X-Long": {strings.Repeat("v", 200)}}},
	}
}

func seedEnds() []End {
	return []End{
		{},
		{Code: CodeCanceled},
		{Code: CodeBadRequest, Message: "proto: malformed payload: bad count"},
		{Code: CodeNoRoute, Message: `no provider for gemini model "gemini-2.0-flash"`},
		{Code: CodeTooLarge, Message: "request body over the relay's limit of 33554432 bytes"},
		{Code: CodeUpstreamUnreachable, Message: "dial tcp 104.18.7.192:443: i/o timeout"},
		{Code: CodeUpstreamBroken, Message: "unexpected EOF"},
		{Code: CodeUpstreamTimeout, Message: "context deadline exceeded"},
		{Code: CodeGoingAway},
		{Code: CodeInternal, Message: "panic: runtime error"},
		{Code: 127, Message: strings.Repeat("m", 127)},                // unknown code; 1/2-byte boundaries
		{Code: 128, Message: strings.Repeat("m", 128)},                //
		{Code: math.MaxUint16, Message: strings.Repeat("x", 4<<10-5)}, // fills an End frame
	}
}

// --- decoders --------------------------------------------------------------

// FuzzRequestHeader decodes arbitrary Request payloads.
func FuzzRequestHeader(f *testing.F) {
	onePInFuzzWorker()
	for _, h := range seedRequests() {
		f.Add(h.Append(nil))
	}
	good := sampleRequest().Append(nil)
	f.Add([]byte{})
	f.Add([]byte{Version})
	f.Add(append([]byte{Version + 1}, good[1:]...))
	f.Add(good[:len(good)-1])
	f.Add([]byte{Version, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}) // forged header count
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > maxFuzzInput {
			return
		}
		var h *RequestHeader
		var err error
		checkAllocBound(t, "ParseRequestHeader", len(p), func() { h, err = ParseRequestHeader(p) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		enc := h.Append(nil)
		if len(enc) > len(p) {
			t.Fatalf("re-encoding grew %d -> %d bytes", len(p), len(enc))
		}
		again, err := ParseRequestHeader(enc)
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("re-encode mismatch: %+v vs %+v (%v)", again, h, err)
		}
		if len(again.Append(nil)) != len(enc) {
			t.Fatalf("encoding not stable in length")
		}
	})
}

// FuzzResponseHeader decodes arbitrary Response payloads.
func FuzzResponseHeader(f *testing.F) {
	onePInFuzzWorker()
	for _, h := range seedResponses() {
		f.Add(h.Append(nil))
	}
	f.Add([]byte{})
	f.Add((&ResponseHeader{Status: 99, Header: http.Header{}}).Append(nil))
	f.Add((&ResponseHeader{Status: 1000, Header: http.Header{}}).Append(nil))
	f.Add(append(binary.AppendUvarint(nil, 1<<32+200), 0))  // status truncates to 200 in a 32-bit int
	f.Add([]byte{0xc8, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f}) // 200, forged header count
	f.Add([]byte{0xc8, 0x81, 0x80, 0x00, 0x00})             // non-canonical varints
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > maxFuzzInput {
			return
		}
		var h *ResponseHeader
		var err error
		checkAllocBound(t, "ParseResponseHeader", len(p), func() { h, err = ParseResponseHeader(p) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) || h != nil {
				t.Fatalf("rejection = %v, %v; want nil, ErrMalformed", h, err)
			}
			return
		}
		if status, _ := binary.Uvarint(p); status != uint64(h.Status) || h.Status < 100 || h.Status > 999 {
			t.Fatalf("wire status %d decoded as %d", status, h.Status)
		}
		enc := h.Append(nil)
		if len(enc) > len(p) {
			t.Fatalf("re-encoding grew %d -> %d bytes", len(p), len(enc))
		}
		again, err := ParseResponseHeader(enc)
		if err != nil || !reflect.DeepEqual(again, h) {
			t.Fatalf("re-encode mismatch: %+v vs %+v (%v)", again, h, err)
		}
	})
}

// FuzzEnd decodes arbitrary End payloads. End's encoding is deterministic,
// so a decoded End must also re-encode byte for byte stably.
func FuzzEnd(f *testing.F) {
	onePInFuzzWorker()
	for _, e := range seedEnds() {
		f.Add(e.Append(nil))
	}
	f.Add([]byte{})
	f.Add([]byte{0})                           // no message length
	f.Add([]byte{0x80, 0x80, 0x04, 0})         // code 65536: would truncate to CodeOK
	f.Add([]byte{6, 0xff, 0xff, 0xff, 0x0f})   // forged message length
	f.Add([]byte{0x86, 0x00, 0x81, 0x00, 'x'}) // non-canonical varints
	f.Fuzz(func(t *testing.T, p []byte) {
		var e *End
		var err error
		checkAllocBound(t, "ParseEnd", len(p), func() { e, err = ParseEnd(p) })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if code, _ := binary.Uvarint(p); code != uint64(e.Code) {
			t.Fatalf("wire code %d decoded as %d", code, e.Code)
		}
		if e.Error() == "" || e.Code.String() == "" {
			t.Fatal("empty description")
		}
		enc := e.Append(nil)
		if len(enc) > len(p) {
			t.Fatalf("re-encoding grew %d -> %d bytes", len(p), len(enc))
		}
		again, err := ParseEnd(enc)
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Fatalf("re-encode mismatch: %+v vs %+v (%v)", again, e, err)
		}
		if !bytes.Equal(again.Append(nil), enc) {
			t.Fatalf("encoding not stable")
		}
	})
}

// --- frame streams ---------------------------------------------------------

// refFrame is one frame as refParse sees it.
type refFrame struct {
	typ     FrameType
	payload []byte
}

// Stream endings, as refParse classifies them.
const (
	endClean     = iota // input ended between frames
	endTruncated        // input ended inside a frame
	endTooLarge         // a frame declared more than its type's limit
	endOverflow         // a length uvarint overflowed 64 bits
)

// refParse is an independent reading of the frame grammar in doc.go, used
// as the oracle for Reader and BodyReader. It also returns the sum of the
// lengths that frames declared (what the Reader may legitimately allocate).
func refParse(in []byte) (frames []refFrame, end int, declared int) {
	for len(in) > 0 {
		t := FrameType(in[0])
		n, k := binary.Uvarint(in[1:])
		switch {
		case k == 0 && len(in)-1 >= binary.MaxVarintLen64:
			// Uvarint wants an 11th byte to tell; ReadUvarint stops at
			// the 10th: ten continuation bytes cannot be a 64-bit value.
			return frames, endOverflow, declared
		case k == 0:
			return frames, endTruncated, declared
		case k < 0:
			return frames, endOverflow, declared
		case n > uint64(limitFor(t)):
			return frames, endTooLarge, declared
		}
		declared += int(n)
		in = in[1+k:]
		if uint64(len(in)) < n {
			return frames, endTruncated, declared
		}
		frames = append(frames, refFrame{t, in[:n]})
		in = in[n:]
	}
	return frames, endClean, declared
}

func checkStreamEnd(t *testing.T, err error, end int) {
	t.Helper()
	ok := false
	switch end {
	case endClean:
		ok = err == io.EOF
	case endTruncated:
		ok = err == io.ErrUnexpectedEOF
	case endTooLarge:
		ok = errors.Is(err, ErrFrameTooLarge)
	case endOverflow:
		ok = err != nil && err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrFrameTooLarge)
	}
	if !ok {
		t.Fatalf("stream ended with %v, want ending kind %d", err, end)
	}
}

// checkPayload decodes a header or End payload as a peer would and checks
// that whatever decodes round-trips.
func checkPayload(t *testing.T, typ FrameType, p []byte) {
	t.Helper()
	switch typ {
	case FrameRequest:
		if h, err := ParseRequestHeader(p); err == nil {
			if again, err := ParseRequestHeader(h.Append(nil)); err != nil || !reflect.DeepEqual(again, h) {
				t.Fatalf("Request round trip: %+v vs %+v (%v)", again, h, err)
			}
		}
	case FrameResponse:
		if h, err := ParseResponseHeader(p); err == nil {
			if again, err := ParseResponseHeader(h.Append(nil)); err != nil || !reflect.DeepEqual(again, h) {
				t.Fatalf("Response round trip: %+v vs %+v (%v)", again, h, err)
			}
		}
	case FrameEnd:
		if e, err := ParseEnd(p); err == nil {
			if again, err := ParseEnd(e.Append(nil)); err != nil || *again != *e {
				t.Fatalf("End round trip: %+v vs %+v (%v)", again, e, err)
			}
		}
	}
}

// FuzzFrames reads arbitrary frame streams twice: frame by frame with
// Reader.Next, and as a sequence of bodies with Reader.Body read through a
// buffer of readSize bytes. Both must agree exactly with refParse: the same
// frames and payloads, the same ending, and bodies that are exactly the
// concatenated Data payloads (never a byte more), ended by io.EOF for End
// OK, the *End for other codes and ErrMalformed for anything else.
func FuzzFrames(f *testing.F) {
	onePInFuzzWorker()
	for _, s := range seedStreams() {
		f.Add(s, uint16(512))
	}
	f.Add(seedStreams()[0], uint16(1))
	f.Add(seedStreams()[1], uint16(0))
	f.Add(seedStreams()[1], uint16(math.MaxUint16))
	f.Fuzz(func(t *testing.T, in []byte, readSize uint16) {
		if len(in) > maxFuzzInput {
			return
		}
		frames, end, declared := refParse(in)
		// The reader allocates a frame's declared length up front (bounded
		// by the type's limit), its pooled bufio buffer, and what the
		// decoders allocate for the payloads.
		limit := uint64(2*declared + allocFactor*len(in) + 64<<10)
		if n := leastAllocated(func() { readFrames(t, in, frames, end) }, limit, 3); n > limit {
			t.Fatalf("reading %d bytes (frames declaring %d) allocated %d bytes", len(in), declared, n)
		}
		readBodies(t, in, frames, end, max(1, int(readSize)))
	})
}

func readFrames(t *testing.T, in []byte, frames []refFrame, end int) {
	r := NewReader(bytes.NewReader(in))
	defer r.Release()
	for i := 0; ; i++ {
		typ, p, err := r.Next()
		if err != nil {
			if i != len(frames) {
				t.Fatalf("Next failed at frame %d of %d: %v", i, len(frames), err)
			}
			checkStreamEnd(t, err, end)
			return
		}
		if i >= len(frames) {
			t.Fatalf("Next returned frame %d, oracle has %d", i, len(frames))
		}
		if typ != frames[i].typ || !bytes.Equal(p, frames[i].payload) {
			t.Fatalf("frame %d: got %s %q, want %s %q", i, typ, p, frames[i].typ, frames[i].payload)
		}
		if len(p) > limitFor(typ) {
			t.Fatalf("%s payload of %d bytes passed the limit", typ, len(p))
		}
		checkPayload(t, typ, p)
	}
}

func readBodies(t *testing.T, in []byte, frames []refFrame, end int, readSize int) {
	r := NewReader(bytes.NewReader(in))
	defer r.Release()
	buf := make([]byte, readSize)
	for i := 0; ; {
		// What the oracle says this body is.
		var want []byte
		for i < len(frames) && frames[i].typ == FrameData {
			want = append(want, frames[i].payload...)
			i++
		}
		var got []byte
		var err error
		body := r.Body()
		for err == nil {
			var n int
			n, err = body.Read(buf)
			if n < 0 || n > len(buf) {
				t.Fatalf("Read returned %d for a %d-byte buffer", n, len(buf))
			}
			if n == 0 && err == nil {
				t.Fatal("Read returned 0, nil")
			}
			if n > 0 && err != nil {
				t.Fatalf("Read returned %d bytes with %v", n, err)
			}
			got = append(got, buf[:n]...)
			if len(got) > len(want) {
				t.Fatalf("body returned %d bytes, Data frames held %d", len(got), len(want))
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("body %q, want %q", got, want)
		}
		if n, again := body.Read(buf); n != 0 || again != err {
			t.Fatalf("error not sticky: %d, %v after %v", n, again, err)
		}
		if i == len(frames) { // the stream itself ended
			if end == endClean {
				if err != io.ErrUnexpectedEOF {
					t.Fatalf("body without End: %v, want ErrUnexpectedEOF", err)
				}
			} else {
				checkStreamEnd(t, err, end)
			}
			return
		}
		// Frame i ended the body.
		checkBodyEnd(t, err, frames[i])
		i++
	}
}

func checkBodyEnd(t *testing.T, err error, fr refFrame) {
	t.Helper()
	if fr.typ != FrameEnd {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s frame in body: %v, want ErrMalformed", fr.typ, err)
		}
		return
	}
	e, perr := ParseEnd(fr.payload)
	switch {
	case perr != nil:
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad End in body: %v, want ErrMalformed", err)
		}
	case e.Code == CodeOK:
		if err != io.EOF {
			t.Fatalf("End OK: %v, want io.EOF", err)
		}
	default:
		var got *End
		if !errors.As(err, &got) || *got != *e {
			t.Fatalf("End %+v: got %v", e, err)
		}
	}
}

// seedStreams are encoder-written exchanges in both directions, plus broken
// ones.
func seedStreams() [][]byte {
	write := func(f func(w *Writer)) []byte {
		var b bytes.Buffer
		f(NewWriter(&b))
		return b.Bytes()
	}
	reqs, resps := seedRequests(), seedResponses()
	s := [][]byte{
		write(func(w *Writer) { // edge → relay
			_ = w.WriteRequest(sampleRequest())
			_, _ = w.Write([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
			_ = w.WriteEnd(End{})
		}),
		write(func(w *Writer) { // relay → edge, streaming answer
			_ = w.WriteDispatched()
			_ = w.WriteResponse(resps[0])
			_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"))
			_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"))
			_, _ = w.Write([]byte("data: [DONE]\n\n"))
			_ = w.WriteEnd(End{})
		}),
		write(func(w *Writer) { // relay → edge, no route
			_ = w.WriteEnd(End{Code: CodeNoRoute, Message: "no provider for gemini"})
		}),
		write(func(w *Writer) { // relay → edge, broken mid-body
			_ = w.WriteDispatched()
			_ = w.WriteResponse(resps[1])
			_, _ = w.Write([]byte(`{"type":"message_start"`))
			_ = w.WriteEnd(End{Code: CodeUpstreamBroken, Message: "unexpected EOF"})
		}),
		write(func(w *Writer) { // Gemini request, body in several frames incl. an empty one
			_ = w.WriteRequest(reqs[6])
			_, _ = w.Write([]byte(`{"contents":[`))
			_, _ = w.Write(nil)
			_ = w.WriteEnd(End{Code: CodeCanceled})
		}),
		write(func(w *Writer) { // Anthropic request, empty body
			_ = w.WriteRequest(reqs[4])
			_ = w.WriteEnd(End{})
		}),
	}
	s = append(s,
		s[0][:len(s[0])-2], // truncated inside End
		s[1][:20],          // truncated inside Response
		append(AppendFrameHeader(nil, FrameData, MaxDataFrame), "abc"...),                   // largest Data frame, cut short
		AppendFrameHeader(nil, FrameData, MaxDataFrame+1),                                   // too large
		AppendFrameHeader(nil, FrameRequest, MaxHeaderFrame+1),                              // too large
		AppendFrame(AppendFrame(nil, FrameData, []byte("x")), 0x7f, nil),                    // unknown type in body
		[]byte{byte(FrameData), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // overflow
		[]byte{byte(FrameData), 0x81, 0x00, 'y', byte(FrameEnd), 0x02, 0, 0},                // non-canonical length
		[]byte{byte(FrameRequest), 0x80, 0x80, 0x40},                                        // claims 1 MiB, sends none
	)
	return s
}

// TestSeedsRoundTrip keeps the seeds honest: each is a valid encoding whose
// decoding equals what was encoded, so fuzzing starts from real traffic.
func TestSeedsRoundTrip(t *testing.T) {
	for i, h := range seedRequests() {
		p := h.Append(nil)
		if got, err := ParseRequestHeader(p); err != nil || !reflect.DeepEqual(got, h) {
			t.Errorf("request seed %d: %v", i, err)
		}
		if len(p) > maxFuzzInput {
			t.Errorf("request seed %d: %d bytes, FuzzRequestHeader ignores it", i, len(p))
		}
	}
	for i, h := range seedResponses() {
		p := h.Append(nil)
		if got, err := ParseResponseHeader(p); err != nil || !reflect.DeepEqual(got, h) {
			t.Errorf("response seed %d: %v", i, err)
		}
		if len(p) > maxFuzzInput {
			t.Errorf("response seed %d: %d bytes, FuzzResponseHeader ignores it", i, len(p))
		}
	}
	for i, e := range seedEnds() {
		p := e.Append(nil)
		if got, err := ParseEnd(p); err != nil || *got != e {
			t.Errorf("end seed %d: %v", i, err)
		}
		if len(p) > limitFor(FrameEnd) {
			t.Errorf("end seed %d: %d bytes over the End frame limit", i, len(p))
		}
	}
	for i, s := range seedStreams() {
		if len(s) > maxFuzzInput {
			t.Errorf("stream seed %d: %d bytes, FuzzFrames ignores it", i, len(s))
		}
	}
	for i, s := range seedStreams()[:6] {
		frames, end, _ := refParse(s)
		if end != endClean || len(frames) == 0 || frames[len(frames)-1].typ != FrameEnd {
			t.Errorf("stream seed %d: %d frames, ending %d", i, len(frames), end)
		}
	}
}

// TestMaxFrames round-trips frames at their size limits through Writer and
// Reader, and checks that Writer refuses one byte more. (The fuzz seeds stay
// small; these are the "max-ish" cases.)
func TestMaxFrames(t *testing.T) {
	// A Gemini-like request whose Path fills the frame exactly; its length
	// prefix is a 3-byte uvarint, and other fields sit at 2/3-byte
	// boundaries.
	req := &RequestHeader{
		ID: "g-max", Family: "gemini", Method: "POST", RawQuery: strings.Repeat("q", 16384),
		Header: http.Header{
			"X-Goog-Api-Client": {"google-genai-sdk/1.2.0"},
			"X-Boundary":        {strings.Repeat("b", 16383), strings.Repeat("c", 127), strings.Repeat("d", 128)},
		},
		BodyLen: math.MaxInt64,
	}
	req.Path = "/" + strings.Repeat("p", MaxHeaderFrame-len(req.Append(nil))-3)
	resp := &ResponseHeader{Status: 200, Header: http.Header{"X-Large": {""}}}
	resp.Header["X-Large"][0] = strings.Repeat("v", MaxHeaderFrame-len(resp.Append(nil))-2)
	end := End{Code: CodeUpstreamBroken}
	end.Message = strings.Repeat("m", limitFor(FrameEnd)-len(end.Append(nil))-1)
	if n := len(req.Append(nil)); n != MaxHeaderFrame {
		t.Fatalf("request is %d bytes, want %d", n, MaxHeaderFrame)
	}
	if n := len(resp.Append(nil)); n != MaxHeaderFrame {
		t.Fatalf("response is %d bytes, want %d", n, MaxHeaderFrame)
	}
	if n := len(end.Append(nil)); n != limitFor(FrameEnd) {
		t.Fatalf("end is %d bytes, want %d", n, limitFor(FrameEnd))
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), MaxDataFrame/16)

	var buf bytes.Buffer
	w := NewWriter(&buf)
	must(t, w.WriteRequest(req))
	must(t, w.WriteResponse(resp))
	if _, err := w.Write(body); err != nil { // exactly one full Data frame
		t.Fatal(err)
	}
	must(t, w.WriteEnd(end))
	frames, ending, _ := refParse(buf.Bytes())
	if ending != endClean || len(frames) != 4 {
		t.Fatalf("%d frames, ending %d; want 4 frames", len(frames), ending)
	}

	r := NewReader(&buf)
	defer r.Release()
	_, p, err := r.Next()
	if got, perr := ParseRequestHeader(p); err != nil || perr != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("request: %v %v", err, perr)
	}
	_, p, err = r.Next()
	if got, perr := ParseResponseHeader(p); err != nil || perr != nil || !reflect.DeepEqual(got, resp) {
		t.Fatalf("response: %v %v", err, perr)
	}
	got, err := io.ReadAll(r.Body())
	var gotEnd *End
	if !bytes.Equal(got, body) || !errors.As(err, &gotEnd) || *gotEnd != end {
		t.Fatalf("body of %d bytes, err %v", len(got), err)
	}

	// One byte more is refused by the Writer before anything is written.
	req.Path += "p"
	resp.Header["X-Large"][0] += "v"
	end.Message += "m"
	buf.Reset()
	for name, err := range map[string]error{
		"request": w.WriteRequest(req), "response": w.WriteResponse(resp), "end": w.WriteEnd(end),
	} {
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("%s over the limit: err = %v, want ErrFrameTooLarge", name, err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written for refused frames", buf.Len())
	}
}
