package guard

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/proto/llmapi"
)

// ErrUninspectable: the guard is on and the request has a body it cannot
// read as text (not JSON, or an endpoint whose text fields it does not
// know). Such requests are refused rather than let across unread.
var ErrUninspectable = errors.New("the border guard cannot inspect this request body")

// Outcome is the guard's decision on one request.
type Outcome struct {
	// Body is the request body to send: the client's own bytes with
	// masked and redacted values replaced in text strings (the same
	// slice when nothing changed).
	Body []byte
	// Vault holds the masked values, for the answer; nil when none.
	Vault *Vault
	// Blocked lists the categories that block the request, sorted.
	Blocked []string
	// Home: the request must go to a domestic relay, unchanged.
	Home bool
	// Counts are the finds per category and action, never their values.
	Counts []Count

	blk *outcomeBlock // the pooled memory behind it; nil when none
}

// Release gives the Outcome's memory (the new body, the vault, the counts)
// back for later inspections, so that a request served in full allocates
// nothing in the guard. Call it once, when everything taken from the
// Outcome is done with: Body (by every goroutine that sends it), the
// Vault (the Answer restoring the response), Counts and Blocked (the log
// and the audit). Nothing of it may be used afterwards: another request's
// values would be read. An Outcome that is never released is garbage
// collected like any other.
func (o *Outcome) Release() {
	if blk := o.blk; blk != nil {
		blk.release()
	}
}

// Count is how many finds of a category met an action.
type Count struct {
	Category string `json:"category"`
	Action   Action `json:"action"`
	N        int    `json:"n"`
}

// textFields are, per kind of endpoint, the paths of the string values
// that hold text (messages, prompts, tool results and tool-call
// arguments, and the model's reasoning a client sends back), and of what
// the model reads beside them: tool definitions, output schemas,
// predicted outputs, prompt variables, code. "#" is any array element (or
// a single value in the array's place, see matchPath), "**" anything
// below. IDs, roles, model names, base64 images and thinking signatures
// are not among them.
var textFields = map[string][][]string{
	"chat": paths("messages.#.content", "messages.#.content.#.text", "messages.#.content.#.refusal", "messages.#.refusal",
		"messages.#.tool_calls.#.function.arguments", "messages.#.function_call.arguments",
		"messages.#.reasoning_content", "messages.#.reasoning", "prediction.content", "prediction.content.#.text",
		"tools.**", "functions.**", "response_format.json_schema.**"),
	"responses": paths("input", "instructions", "input.#.content", "input.#.content.#.text", "input.#.output",
		"input.#.output.#.text", "input.#.arguments", "input.#.input", "input.#.summary.#.text",
		"tools.**", "text.format.**", "prompt.variables.**"),
	"prompt": paths("prompt", "prompt.#", "suffix"),
	"input":  paths("input", "input.#", "input.#.text"),
	// Documents: a content source's text, and the title and context of a
	// document or search result. A plain-text source's data is in
	// sourceData.
	"messages": paths("system", "system.#.text", "messages.#.content", "messages.#.content.#.text",
		"messages.#.content.#.content", "messages.#.content.#.content.#.text", "messages.#.content.#.input.**",
		"messages.#.content.#.source.content", "messages.#.content.#.source.content.#.text",
		"messages.#.content.#.title", "messages.#.content.#.context", "messages.#.content.#.thinking",
		"tools.**", "output_format.**"),
	"contents": paths("contents.#.parts.#.text", "systemInstruction.parts.#.text", "system_instruction.parts.#.text",
		"contents.#.parts.#.functionCall.args.**", "contents.#.parts.#.function_call.args.**",
		"contents.#.parts.#.functionResponse.response.**", "contents.#.parts.#.function_response.response.**",
		"content.parts.#.text", "contents.#.parts.#.executableCode.code", "contents.#.parts.#.executable_code.code",
		"contents.#.parts.#.codeExecutionResult.output", "contents.#.parts.#.code_execution_result.output",
		"tools.**", "generationConfig.responseSchema.**", "generation_config.response_schema.**",
		"generationConfig.responseJsonSchema.**", "generation_config.response_json_schema.**"),
}

// sourceData are the paths of a document's or an image's source data:
// text when the source's type is "text", a PDF's or an image's base64 when
// it is "base64" (base64Source), which is left alone.
var sourceData = map[string][][]string{
	"messages": paths("messages.#.content.#.source.data", "messages.#.content.#.content.#.source.data"),
}

// keyFields are the text fields whose objects' keys are text too: those
// that hold anything below them ("**", a tool's input, a function's
// arguments or response), where a client's keys are its own words (a map
// by names, numbers, addresses) that the model reads.
var keyFields = func() map[string][][]string {
	out := map[string][][]string{}
	for kind, fields := range textFields {
		for _, f := range fields {
			if f[len(f)-1] == "**" {
				out[kind] = append(out[kind], f)
			}
		}
	}
	return out
}()

func paths(ps ...string) [][]string {
	out := make([][]string, len(ps))
	for i, p := range ps {
		out[i] = strings.Split(p, ".")
	}
	return out
}

// endpointKind is which request shape a family's path carries; "" for
// endpoints whose bodies the guard does not know. The generation dialects
// are llmapi's; the other text endpoints (legacy completions, embeddings,
// token counts) are named here.
func endpointKind(family llmapi.Family, path string) string {
	if d, ok := llmapi.ClientDialect(family, "POST", path); ok {
		switch d {
		case llmapi.ChatCompletions:
			return "chat"
		case llmapi.Responses:
			return "responses"
		case llmapi.Messages:
			return "messages"
		case llmapi.GenerateContent:
			return "contents"
		}
		return ""
	}
	switch {
	case family == llmapi.OpenAI && strings.HasSuffix(path, "/completions"):
		return "prompt"
	case family == llmapi.OpenAI && (strings.HasSuffix(path, "/embeddings") || strings.HasSuffix(path, "/moderations")):
		return "input"
	case family == llmapi.Anthropic && strings.HasSuffix(path, "/messages/count_tokens"):
		return "messages"
	case family == llmapi.Anthropic && strings.HasSuffix(path, "/complete"):
		return "prompt"
	case family == llmapi.Gemini && (strings.HasSuffix(path, ":countTokens") || strings.HasSuffix(path, ":embedContent")):
		return "contents"
	}
	return ""
}

// matchPath reports whether path fits pattern. A "#" of the pattern also
// fits no element at all: the Gemini API takes a single value where its
// schema repeats one ("contents": {"parts": {"text": …}}, as Google's own
// samples write it), and such a text is read like a listed one.
func matchPath(pattern []string, path [][]byte) bool {
	for _, p := range pattern {
		switch {
		case p == "**":
			return len(path) > 0
		case p == "#" && (len(path) == 0 || string(path[0]) != "#"):
			continue // a single value in place of the array
		case len(path) == 0 || !keyIs(p, path[0]):
			return false
		}
		path = path[1:]
	}
	return len(path) == 0
}

// keyIs reports whether the object key k names the field p as Go's
// encoding/json reads it: case-insensitively, with Unicode's simple
// folding (ſ is s, K is k). The relay's format converters decode
// requests so: {"Content": …} is a message's content to them, and must be
// one to the guard too.
func keyIs(p string, k []byte) bool {
	if len(k) == len(p) && string(k) == p {
		return true
	}
	if len(k) != len(p) && ascii(k) {
		return false // folding ASCII keeps the length
	}
	return strings.EqualFold(p, string(k))
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isText(fields [][]string, path [][]byte) bool {
	for _, f := range fields {
		if matchPath(f, path) {
			return true
		}
	}
	return false
}

// Inspect reads the text of a request body of family sent to path and
// decides. A nil Policy passes
// everything. A request without a body passes; a body the guard cannot
// read is ErrUninspectable.
//
// It allocates nothing once its pools are warm and callers release what
// it returns (Outcome.Release): its working memory is pooled, and so is
// the Outcome with its vault, counts and new body; texts without escapes
// are scanned where they lie in body, and the new body is written while
// the walk goes. Each collection the guard's garbage would cause slows
// the calls that run during it several times over (issue 16).
func (p *Policy) Inspect(family llmapi.Family, path string, body []byte) (*Outcome, error) {
	if p == nil || len(body) == 0 {
		return &Outcome{Body: body}, nil
	}
	kind := endpointKind(family, path)
	fields := textFields[kind]
	if fields == nil {
		return nil, ErrUninspectable
	}
	ins := inspections.Get().(*inspection)
	defer ins.release()
	blk := outcomes.Get().(*outcomeBlock)
	o, vault := &blk.o, &blk.vault
	o.Body, o.blk, vault.entries = body, blk, blk.entries[:0]
	ins.p, ins.fields, ins.data, ins.keys, ins.body, ins.blk = p, fields, sourceData[kind], keyFields[kind], body, blk
	ins.encoded = encodedData[kind]
	ins.w.doc = body
	if err := ins.w.run(); err != nil {
		blk.release()
		return nil, ErrUninspectable
	}
	slices.SortFunc(ins.counts, func(a, b Count) int {
		if c := strings.Compare(a.Category, b.Category); c != 0 {
			return c
		}
		return strings.Compare(string(a.Action), string(b.Action))
	})
	if len(ins.counts) > 0 {
		o.Counts = append(blk.counts[:0], ins.counts...)
	}
	for _, c := range o.Counts {
		switch c.Action {
		case Block:
			if o.Blocked == nil {
				o.Blocked = blk.blocked[:0]
			}
			o.Blocked = append(o.Blocked, c.Category)
		case KeepHome:
			o.Home = true
		}
	}
	o.Blocked = compact(o.Blocked) // sorted with the counts
	if len(o.Blocked) > 0 || o.Home {
		return o, nil // refused, or sent home as the client wrote it
	}
	if ins.out != nil {
		o.Body = append(ins.out, body[ins.prev:]...)
		blk.body = o.Body[:0] // its room, grown or not, for the next request
	}
	if vault.Len() > 0 {
		o.Vault = vault
	}
	return o, nil
}

// outcomeBlock is an Outcome with room for its vault, counts and new
// body, pooled: Outcome.Release puts it back.
type outcomeBlock struct {
	o       Outcome
	vault   Vault
	entries [4]vaultEntry
	counts  [4]Count
	blocked [4]string
	body    []byte // room for the new body
}

var outcomes = sync.Pool{New: func() any { return new(outcomeBlock) }}

// maxKeptBody bounds the body buffer a released Outcome keeps: a rare
// huge prompt's buffer is left to the garbage collector.
const maxKeptBody = 256 << 10

// release empties blk and pools it. The new body is not wiped: it is what
// was sent, with the personal data already masked; the vault is.
func (blk *outcomeBlock) release() {
	blk.o = Outcome{}
	blk.vault.reset()
	clear(blk.counts[:])
	clear(blk.blocked[:])
	if cap(blk.body) > maxKeptBody {
		blk.body = nil
	}
	outcomes.Put(blk)
}

// inspection is the working memory of one Inspect call, pooled: the
// walker's path, the finds of a text, the counts, the buffer escaped
// texts are decoded into, and the new body being written.
type inspection struct {
	p      *Policy
	fields [][]string
	data   [][]string // sourceData's
	keys   [][]string // keyFields'
	body   []byte
	w      walker
	finds  []detect.Match
	counts []Count
	text   []byte // escaped texts are decoded here
	view   []byte // the jsonView of a text that is JSON with escapes
	// reading and offsets are the values of a JSON text's strings and
	// numbers and their offsets in the text, seg the finds in one of
	// them, and jfinds what findJSON keeps of the text's finds.
	reading []byte
	offsets []int32
	seg     []detect.Match
	jfinds  []jsonFind
	// decoded is a text file's data, base64 decoded; plain the same with
	// its values masked, to encode again (visitEncoded).
	decoded, plain []byte
	encoded        [][]string // encodedData's
	// out is the new body from the first change on: body[:prev] with the
	// changed strings rewritten; nil while nothing changed. It is written
	// in the Outcome's buffer (blk.body).
	out  []byte
	prev int
	blk  *outcomeBlock
}

var inspections = sync.Pool{New: func() any {
	// Room for a typical request, so that a new one (the pool is emptied
	// by garbage collections) does not grow piece by piece.
	ins := &inspection{finds: make([]detect.Match, 0, 16), counts: make([]Count, 0, 8), text: make([]byte, 0, 1024)}
	ins.w.path, ins.w.starts = make([][]byte, 0, 8), make([]int, 0, 8)
	ins.w.visit = ins.visit // bound once per pooled inspection
	ins.w.numbers = true
	ins.w.keys = ins.visitKey
	return ins
}}

// release drops the references to the request and pools ins.
func (ins *inspection) release() {
	ins.p, ins.fields, ins.data, ins.keys, ins.body, ins.blk, ins.out, ins.prev = nil, nil, nil, nil, nil, nil, nil, 0
	ins.encoded = nil
	ins.w.doc = nil
	clear(ins.w.path[:cap(ins.w.path)])
	ins.finds, ins.counts = ins.finds[:0], ins.counts[:0]
	if cap(ins.text) > 64<<10 {
		ins.text = nil // a huge text's buffer is not kept
	}
	if cap(ins.view) > 64<<10 || cap(ins.reading) > 64<<10 {
		ins.view, ins.reading, ins.offsets = nil, nil, nil
	}
	if cap(ins.decoded) > 64<<10 || cap(ins.plain) > 64<<10 {
		ins.decoded, ins.plain = nil, nil
	}
	inspections.Put(ins)
}

// visit judges one string (or number) of the body: a text field's finds
// are counted and, when masked or redacted, the string is rewritten into
// ins.out.
func (ins *inspection) visit(w *walker, s span) error {
	if ins.body[s.start] == '"' && isText(ins.encoded, w.path) {
		if handled, err := ins.visitEncoded(w, s, ins.body[s.start:s.end]); handled || err != nil {
			return err
		}
	}
	if !isText(ins.fields, w.path) && !(isText(ins.data, w.path) && !base64Source(ins.body, w.starts[len(w.starts)-1])) {
		return nil
	}
	lit := ins.body[s.start:s.end]
	if lit[0] != '"' {
		return ins.judge(s, lit, nil) // a number: it becomes a string if rewritten
	}
	return ins.visitString(s, lit)
}

// visitKey judges a key of an object below a keyFields path.
func (ins *inspection) visitKey(w *walker, s span) error {
	if len(ins.keys) == 0 || !isText(ins.keys, w.path) {
		return nil
	}
	return ins.visitString(s, ins.body[s.start:s.end])
}

// visitString judges the string literal lit at s.
func (ins *inspection) visitString(s span, lit []byte) error {
	text, buf, err := unquote(ins.text, lit)
	ins.text = buf
	if err != nil {
		return err
	}
	// A JSON text (a tool call's arguments, a tool's result) is read as the
	// model reads it, its own escapes resolved; if something in it is
	// rewritten, its view is what is sent.
	view := jsonView(ins.view[:0], text)
	if view != nil {
		ins.view, text = view, view
	}
	return ins.judge(s, text, view)
}

// judge counts the finds in text, the value of the string or number at s
// (its jsonView when view is set), and rewrites it into ins.out, as a
// string, when one is masked or redacted.
func (ins *inspection) judge(s span, text, view []byte) error {
	ins.finds = ins.find(text, view)
	if !ins.counted() {
		return nil
	}
	ins.open(s)
	// text is valid UTF-8 (unquote checks it or decodes it so), and
	// placeholders need no escaping.
	ins.out = append(ins.replaced(ins.out, text, true), '"')
	ins.prev = s.end
	return nil
}

// counted counts ins.finds and reports whether one is masked or redacted:
// the text they are in is rewritten.
func (ins *inspection) counted() bool {
	rewrite := false
	for _, f := range ins.finds {
		a := ins.p.action(f.Category, f.Word)
		ins.count(f.Category, a)
		rewrite = rewrite || a == Mask || a == Redact
	}
	return rewrite
}

// open starts rewriting the string literal at s: ins.out takes the body
// up to it, and its opening quote.
func (ins *inspection) open(s span) {
	if ins.out == nil {
		ins.out = slices.Grow(ins.blk.body[:0], len(ins.body)+len(ins.body)/8)
	}
	ins.out = append(append(ins.out, ins.body[ins.prev:s.start]...), '"')
}

// replaced appends text (a jsonView when the text has one) to dst with
// ins.finds masked or redacted, the rest as a JSON string's body
// (escaped) or as it is. A find in a JSON text (ins.jfinds) is masked by
// its value as it reads, and one in a number is quoted: the number
// becomes a string holding the placeholder.
func (ins *inspection) replaced(dst, text []byte, escaped bool) []byte {
	p, prev := ins.p, 0
	for k, f := range ins.finds {
		a := p.action(f.Category, f.Word)
		if a != Mask && a != Redact {
			continue
		}
		dst = appendPiece(dst, text[prev:f.Start], escaped)
		value, quote := text[f.Start:f.End], []byte(nil)
		if k < len(ins.jfinds) {
			jf := ins.jfinds[k]
			value, quote = ins.reading[jf.value.start:jf.value.end], quotes[jf.quote]
		}
		dst = appendPiece(dst, quote, escaped)
		m := p.mark(f.Category)
		if a == Mask {
			dst = append(dst, maskValue(&ins.blk.vault, f.Category, m.label, value)...)
		} else {
			dst = append(dst, m.redacted...)
		}
		dst = appendPiece(dst, quote, escaped)
		prev = f.End
	}
	return appendPiece(dst, text[prev:], escaped)
}

// appendPiece appends b to dst, escaped as a JSON string's body (b is
// valid UTF-8) or as it is.
func appendPiece(dst, b []byte, escaped bool) []byte {
	if escaped {
		return appendEscaped(dst, b, true)
	}
	return append(dst, b...)
}

// find is the finds in text, the value of a string or number (its
// jsonView when view is set). A JSON text is read string by string
// (findJSON); ins.jfinds then holds its finds' values.
func (ins *inspection) find(text, view []byte) []detect.Match {
	ins.jfinds = ins.jfinds[:0]
	if view != nil || jsonText(text) {
		return ins.findJSON(text)
	}
	return ins.p.find(ins.finds[:0], text)
}

// count adds a find of category met by action.
func (ins *inspection) count(category string, a Action) {
	for k := range ins.counts {
		if c := &ins.counts[k]; c.Category == category && c.Action == a {
			c.N++
			return
		}
	}
	ins.counts = append(ins.counts, Count{Category: category, Action: a, N: 1})
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// find is one text's finds, detectors' and words', sorted and without
// overlaps; a word find wins over a detector's that overlaps it, so a
// blocking word is never hidden behind a masked number.
func (p *Policy) find(dst []detect.Match, text []byte) []detect.Match {
	dst = p.words.FindBytes(dst, text)
	nw := len(dst)
	dst = p.detectors.FindBytes(dst, text)
	if nw == 0 || nw == len(dst) {
		return dst
	}
	kept := dst[:nw]
	for _, m := range dst[nw:] {
		if !overlapsAny(dst[:nw], m) {
			kept = append(kept, m)
		}
	}
	slices.SortStableFunc(kept, func(a, b detect.Match) int { return a.Start - b.Start })
	return kept
}

func overlapsAny(ms []detect.Match, m detect.Match) bool {
	for _, x := range ms {
		if m.Start < x.End && x.Start < m.End {
			return true
		}
	}
	return false
}
