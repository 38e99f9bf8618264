package convert

// EventType is the kind of a neutral stream event.
type EventType int

// Neutral stream events. A well-formed stream is Start, then blocks (each
// BlockStart, Deltas, BlockStop; blocks do not overlap), then Finish, Usage
// (any number, each the total so far), and End; Error may replace the rest
// at any point.
const (
	EvStart EventType = iota
	EvBlockStart
	EvDelta
	EvBlockStop
	EvFinish
	EvUsage
	EvError
	EvEnd
)

// BlockType is the kind of a content block in a stream.
type BlockType int

// Block types.
const (
	BlockText BlockType = iota
	BlockThinking
	BlockTool
	BlockRedacted
	BlockRefusal // text of a refusal: plain text to clients whose API has no refusal form
	BlockImage   // an image in the answer, whole in its EvBlockStart (see images.go)
)

// Event is one neutral stream event.
type Event struct {
	Type  EventType
	Index int       // block index, from 0, for block events
	Block BlockType // for EvBlockStart
	// ID and Model of the message for EvStart; ID and Name of the tool for a
	// BlockTool EvBlockStart; the redacted data for a BlockRedacted start;
	// the media type (Name) for a BlockImage start.
	ID, Name, Model string
	// Text is the text, thinking or tool-argument fragment of an EvDelta,
	// or the base64 data of a BlockImage start: no API streams an image in
	// pieces.
	Text string
	// Signature, on an EvDelta of a thinking block, is its signature.
	Signature string
	Stop      Stop
	StopSeq   string
	Usage     Usage
	Err       *Error
}

// emitFunc receives neutral events; an error stops the stream (the client
// is gone).
type emitFunc func(Event) error
