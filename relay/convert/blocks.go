package convert

// blocks is the block bookkeeping a provider decoder needs when its dialect
// has no blocks of its own (Chat Completions deltas, Gemini parts): which
// block is open, of what type, and the next index. At most one block is
// open; starting another closes it first, as Anthropic clients require.
type blocks struct {
	emit     emitFunc
	open     int // index of the open block, or -1
	openType BlockType
	next     int
	finished bool // a finish reason arrived
	done     bool // the stream is over (end, or an in-band error)
}

// end handles the end of the stream ([DONE], or the end of the body): it
// is complete only after a finish reason, else ErrTruncated.
func (b *blocks) end() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.finished {
		return ErrTruncated
	}
	return b.emit(Event{Type: EvEnd})
}

func newBlocks(emit emitFunc) blocks { return blocks{emit: emit, open: -1} }

// ensure makes a block of type t the open one, reusing it if already open.
func (b *blocks) ensure(t BlockType) error {
	if b.open >= 0 && b.openType == t {
		return nil
	}
	_, err := b.start(t, "", "")
	return err
}

// text adds s to the open block of type t, opening one first if need be;
// an empty s opens nothing, as providers send empty fields in between.
func (b *blocks) text(t BlockType, s string) error {
	if s == "" {
		return nil
	}
	if err := b.ensure(t); err != nil {
		return err
	}
	return b.emit(Event{Type: EvDelta, Index: b.open, Text: s})
}

// start closes any open block and opens a new one of type t.
func (b *blocks) start(t BlockType, id, name string) (int, error) {
	if err := b.closeOpen(); err != nil {
		return 0, err
	}
	b.open, b.openType, b.next = b.next, t, b.next+1
	return b.open, b.emit(Event{Type: EvBlockStart, Index: b.open, Block: t, ID: id, Name: name})
}

// image sends img as a block of its own, opened and closed at once.
func (b *blocks) image(img *Image) error {
	if err := b.closeOpen(); err != nil {
		return err
	}
	i := b.next
	b.next++
	if err := b.emit(Event{Type: EvBlockStart, Index: i, Block: BlockImage, Name: img.MediaType, Text: img.Data}); err != nil {
		return err
	}
	return b.emit(Event{Type: EvBlockStop, Index: i})
}

func (b *blocks) closeOpen() error {
	if b.open < 0 {
		return nil
	}
	i := b.open
	b.open = -1
	return b.emit(Event{Type: EvBlockStop, Index: i})
}
