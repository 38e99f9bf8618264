package proto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// writeLog records each Write it gets, as the transport would see them.
type writeLog struct{ writes [][]byte }

func (l *writeLog) Write(p []byte) (int, error) {
	l.writes = append(l.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (l *writeLog) joined() []byte { return bytes.Join(l.writes, nil) }

// TestHoldCoalescesFrames: frames written between Hold and Flush (or an End)
// leave in one Write, decode to the same frames, and a hold never collects
// more than holdLimit bytes.
func TestHoldCoalescesFrames(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*MaxDataFrame+7)
	tests := []struct {
		name   string
		write  func(w *Writer) error
		writes int // Writes the transport sees
		frames []FrameType
	}{
		{"request, body, end in one write", func(w *Writer) error {
			w.Hold()
			must := errors.Join(w.WriteRequest(sampleRequest()))
			_, err := w.Write([]byte(`{"model":"m"}`))
			return errors.Join(must, err, w.WriteEnd(End{}))
		}, 1, []FrameType{FrameRequest, FrameData, FrameEnd}},
		{"response and first data, flushed", func(w *Writer) error {
			w.Hold()
			err := w.WriteResponse(&ResponseHeader{Status: 200})
			_, werr := w.Write([]byte("data: {}\n\n"))
			return errors.Join(err, werr, w.Flush())
		}, 1, []FrameType{FrameResponse, FrameData}},
		{"no hold: one write per frame", func(w *Writer) error {
			err := w.WriteResponse(&ResponseHeader{Status: 200})
			_, werr := w.Write([]byte("data: {}\n\n"))
			return errors.Join(err, werr, w.WriteEnd(End{}))
		}, 3, []FrameType{FrameResponse, FrameData, FrameEnd}},
		{"flush with nothing held writes nothing", func(w *Writer) error {
			w.Hold()
			return w.Flush()
		}, 0, nil},
		{"a big body is not held whole", func(w *Writer) error {
			w.Hold()
			err := w.WriteRequest(sampleRequest())
			_, werr := w.Write(big)
			return errors.Join(err, werr, w.WriteEnd(End{}))
		}, 4, []FrameType{FrameRequest, FrameData, FrameData, FrameData, FrameData, FrameEnd}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log writeLog
			if err := tt.write(NewWriter(&log)); err != nil {
				t.Fatal(err)
			}
			if len(log.writes) != tt.writes {
				t.Errorf("%d writes, want %d", len(log.writes), tt.writes)
			}
			for i, w := range log.writes {
				if len(w) > holdLimit+MaxDataFrame+16 {
					t.Errorf("write %d is %d bytes", i, len(w))
				}
			}
			r := NewReader(bytes.NewReader(log.joined()))
			defer r.Release()
			var got []FrameType
			for {
				typ, _, err := r.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, typ)
			}
			if !equalTypes(got, tt.frames) {
				t.Errorf("frames %v, want %v", got, tt.frames)
			}
		})
	}
}

func equalTypes(a, b []FrameType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestChunkReturnsFramesInPlace: Chunk yields each Data payload whole and
// then the body's end, like Read.
func TestChunkReturnsFramesInPlace(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	events := []string{"data: 1\n\n", "data: 2\n\n", string(bytes.Repeat([]byte("z"), 3*readBufSize))}
	for _, e := range events {
		if _, err := w.Write([]byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	must(t, w.WriteEnd(End{Code: CodeUpstreamBroken, Message: "cut"}))
	r := NewReader(&buf)
	defer r.Release()
	body := r.Body()
	for _, e := range events {
		p, err := body.Chunk()
		if err != nil || string(p) != e {
			t.Fatalf("chunk %.20q, %v; want %.20q", p, err, e)
		}
	}
	var end *End
	if _, err := body.Chunk(); !errors.As(err, &end) || end.Code != CodeUpstreamBroken {
		t.Fatalf("err = %v, want the End", err)
	}
}

// The per-event path allocates nothing once warm: writing a Data frame,
// reading it back, and the header frames' encoding.
func TestPerEventPathAllocatesNothing(t *testing.T) {
	event := []byte(`data: {"choices":[{"delta":{"content":" tok7"}}]}` + "\n\n")
	var sink bytes.Buffer
	w := NewWriter(&sink)
	src := &loopReader{}
	r := NewReader(src)
	defer r.Release()
	body := r.Body()
	tests := []struct {
		name string
		f    func()
	}{
		{"Writer.Write", func() { sink.Reset(); _, _ = w.Write(event) }},
		{"Writer.WriteEnd", func() { sink.Reset(); _ = w.WriteEnd(End{}) }},
		{"Writer.WriteDispatched", func() { sink.Reset(); _ = w.WriteDispatched() }},
		{"held Response and Data", func() {
			sink.Reset()
			w.Hold()
			_ = w.WriteResponse(&ResponseHeader{Status: 200})
			_, _ = w.Write(event)
			_ = w.Flush()
		}},
		{"Reader.Next", func() { _, _, _ = r.Next() }},
		{"BodyReader.Chunk", func() { _, _ = body.Chunk() }},
	}
	src.frame = AppendFrame(nil, FrameData, event)
	for _, tt := range tests {
		tt.f() // warm up: buffers reach their size
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", tt.name, n)
		}
	}
}

// loopReader yields the same frame forever.
type loopReader struct {
	frame []byte
	off   int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.frame[l.off:])
	l.off = (l.off + n) % len(l.frame)
	return n, nil
}

// TestReaderKeepsNoBigBuffer: a frame larger than the read buffer is read
// into a pooled buffer that goes back as soon as the next frame is asked
// for, so a stream waiting between events holds only its read buffer.
func TestReaderKeepsNoBigBuffer(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	big := bytes.Repeat([]byte("b"), 3*readBufSize)
	for _, p := range [][]byte{big, []byte("small"), big} {
		if _, err := w.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	r := NewReader(&buf)
	defer r.Release()
	for i, want := range []int{len(big), len("small"), len(big)} {
		_, p, err := r.Next()
		if err != nil || len(p) != want {
			t.Fatalf("frame %d: %d bytes, %v", i, len(p), err)
		}
		if held := cap(r.buf) > 0; held != (want > readBufSize) {
			t.Errorf("frame %d (%d bytes): reader holds a big buffer: %v", i, want, held)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("err = %v, want EOF", err)
	}
	if r.buf != nil {
		t.Error("a big buffer is still held after the stream ended")
	}
}

// TestWriterKeepsASmallBuffer: after a frame bigger than an event (a
// response header, a request with its body) the Writer keeps no more than
// 1 KiB for the rest of the stream.
func TestWriterKeepsASmallBuffer(t *testing.T) {
	h := &ResponseHeader{Status: 200, Header: http.Header{"X-Big": {strings.Repeat("h", 3<<10)}}}
	for _, tc := range []struct {
		name  string
		write func(w *Writer) error
	}{
		{"response header", func(w *Writer) error { return w.WriteResponse(h) }},
		{"data", func(w *Writer) error { _, err := w.Write(bytes.Repeat([]byte("d"), 3<<10)); return err }},
		{"held header and data", func(w *Writer) error {
			w.Hold()
			if err := w.WriteResponse(h); err != nil {
				return err
			}
			if _, err := w.Write([]byte("data: {}\n\n")); err != nil {
				return err
			}
			return w.Flush()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(io.Discard)
			if err := tc.write(w); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("data: {}\n\n")); err != nil {
				t.Fatal(err)
			}
			if cap(w.buf) > 1<<10 {
				t.Fatalf("the writer keeps %d bytes, want at most 1 KiB", cap(w.buf))
			}
		})
	}
}

// frameAtATime hands out one frame per Read (a stream whose peer sends
// them apart) and counts the waits for a new frame during which the
// Reader held a read buffer.
type frameAtATime struct {
	rd     *Reader
	frames [][]byte
	cur    []byte
	held   int
}

func (f *frameAtATime) Read(p []byte) (int, error) {
	if len(f.cur) == 0 {
		if f.rd.r != nil {
			f.held++
		}
		if len(f.frames) == 0 {
			return 0, io.EOF
		}
		f.cur, f.frames = f.frames[0], f.frames[1:]
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// TestReaderWaitsWithoutBuffer: a Reader that waits for its stream's next
// frame with nothing buffered holds no read buffer, and reads every frame
// whole all the same.
func TestReaderWaitsWithoutBuffer(t *testing.T) {
	events := []string{"data: one\n\n", "data: two\n\n", strings.Repeat("x", 3*readBufSize)}
	src := &frameAtATime{}
	for _, ev := range events {
		src.frames = append(src.frames, AppendFrame(nil, FrameData, []byte(ev)))
	}
	src.frames = append(src.frames, AppendFrame(nil, FrameEnd, (&End{}).Append(nil)))
	rd := NewReader(src)
	src.rd = rd
	defer rd.Release()
	body := rd.Body()
	for _, want := range events {
		var got []byte
		for len(got) < len(want) {
			p, err := body.Chunk()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p...)
		}
		if string(got) != want {
			t.Fatalf("read %.40q; want %.40q", got, want)
		}
	}
	if _, err := body.Chunk(); err != io.EOF {
		t.Fatalf("after the End: %v; want io.EOF", err)
	}
	if src.held != 0 {
		t.Fatalf("the Reader held its read buffer in %d of its waits for a frame", src.held)
	}
}

// TestWriterKeepsNoBuffer: between frames a Writer holds no encoding
// buffer, also after a frame too large to send; a hold keeps one until
// Flush.
func TestWriterKeepsNoBuffer(t *testing.T) {
	var sink bytes.Buffer
	w := NewWriter(&sink)
	held := func() bool { return w.buf != nil || w.bp != nil }
	steps := []struct {
		name string
		f    func() error
		held bool
	}{
		{"Data", func() error { _, err := w.Write([]byte("data: x\n\n")); return err }, false},
		{"big Data", func() error { _, err := w.Write(make([]byte, 3*keepBuf)); return err }, false},
		{"Response", func() error { return w.WriteResponse(&ResponseHeader{Status: 200}) }, false},
		{"Dispatched", w.WriteDispatched, false},
		{"held Data", func() error { w.Hold(); _, err := w.Write([]byte("data: y\n\n")); return err }, true},
		{"Flush", w.Flush, false},
		{"too large", func() error {
			err := w.WriteResponse(&ResponseHeader{Status: 200, Header: http.Header{"X": {strings.Repeat("x", MaxHeaderFrame)}}})
			if !errors.Is(err, ErrFrameTooLarge) {
				return fmt.Errorf("got %v; want ErrFrameTooLarge", err)
			}
			return nil
		}, false},
		{"End", func() error { return w.WriteEnd(End{}) }, false},
	}
	for _, st := range steps {
		if err := st.f(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if held() != st.held {
			t.Fatalf("after %s: Writer holds a buffer %v; want %v", st.name, held(), st.held)
		}
	}
}

// readsOf hands out its parts one per Read, as a tunnel stream delivers
// what arrived together.
type readsOf struct{ parts [][]byte }

func (r *readsOf) Read(p []byte) (int, error) {
	if len(r.parts) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.parts[0])
	if r.parts[0] = r.parts[0][n:]; len(r.parts[0]) == 0 {
		r.parts = r.parts[1:]
	}
	return n, nil
}

// TestEndsNext: after the last Data bytes, EndsNext says the body ends when
// an End with CodeOK is already buffered, and nothing else; the bytes stay
// valid, and the body still reads to its end as before.
func TestEndsNext(t *testing.T) {
	frame := func(typ FrameType, p []byte) []byte { return AppendFrame(nil, typ, p) }
	data := frame(FrameData, []byte("data: [DONE]\n\n"))
	ok, broken := End{}, End{Code: CodeUpstreamBroken, Message: "cut"}
	endOK := frame(FrameEnd, ok.Append(nil))
	endErr := frame(FrameEnd, broken.Append(nil))
	more := frame(FrameData, []byte("more"))
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name  string
		reads [][]byte // what each Read of the stream returns
		want  bool
	}{
		{"End with the last data", [][]byte{join(data, endOK)}, true},
		{"End in a later read", [][]byte{data, endOK}, false},
		{"more data next", [][]byte{join(data, more, endOK)}, false},
		{"End with an error", [][]byte{join(data, endErr)}, false},
		{"half an End buffered", [][]byte{join(data, endOK[:1]), endOK[1:]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(&readsOf{parts: tc.reads})
			defer r.Release()
			b := r.Body()
			p, err := b.Chunk()
			if err != nil || string(p) != "data: [DONE]\n\n" {
				t.Fatalf("Chunk = %q, %v", p, err)
			}
			if got := b.EndsNext(); got != tc.want {
				t.Errorf("EndsNext = %v, want %v", got, tc.want)
			}
			if string(p) != "data: [DONE]\n\n" {
				t.Errorf("EndsNext moved the chunk: %q", p)
			}
			rest, err := io.ReadAll(b)
			switch {
			case tc.name == "more data next":
				if string(rest) != "more" || err != nil {
					t.Errorf("the rest: %q, %v", rest, err)
				}
			case tc.name == "End with an error":
				var end *End
				if !errors.As(err, &end) || end.Code != CodeUpstreamBroken {
					t.Errorf("the rest: %q, %v; want the End", rest, err)
				}
			case len(rest) != 0 || err != nil:
				t.Errorf("the rest: %q, %v; want the clean end", rest, err)
			}
			if tc.want && !b.EndsNext() {
				t.Error("EndsNext false once the body ended")
			}
		})
	}
}

// lazyLog is a writeLog that can also take lazy writes (LazyWriter),
// recorded with a "lazy:" prefix.
type lazyLog struct{ writeLog }

func (l *lazyLog) WriteLazy(p []byte) (int, error) {
	l.writes = append(l.writes, append([]byte("lazy:"), p...))
	return len(p), nil
}

// TestDispatchedGoesLazily: a Dispatched frame goes to a stream that can
// hold it back with WriteLazy, alone; inside a hold it leaves with the held
// frames; a stream without WriteLazy gets a plain Write.
func TestDispatchedGoesLazily(t *testing.T) {
	dispatched := AppendFrameHeader(nil, FrameDispatched, 0)
	lazy := &lazyLog{}
	if err := NewWriter(lazy).WriteDispatched(); err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("lazy:"), dispatched...); len(lazy.writes) != 1 || !bytes.Equal(lazy.writes[0], want) {
		t.Errorf("to a LazyWriter: writes %q; want one %q", lazy.writes, want)
	}

	held := &lazyLog{}
	w := NewWriter(held)
	w.Hold()
	err := errors.Join(w.WriteDispatched(), w.WriteResponse(&ResponseHeader{Status: 200}), w.Flush())
	if err != nil {
		t.Fatal(err)
	}
	if len(held.writes) != 1 || !bytes.HasPrefix(held.writes[0], dispatched) {
		t.Errorf("held: writes %q; want one, starting with the Dispatched frame", held.writes)
	}

	plain := &writeLog{}
	if err := NewWriter(plain).WriteDispatched(); err != nil {
		t.Fatal(err)
	}
	if len(plain.writes) != 1 || !bytes.Equal(plain.writes[0], dispatched) {
		t.Errorf("to a plain writer: writes %q; want one %q", plain.writes, dispatched)
	}
}
