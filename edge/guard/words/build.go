package words

import "sort"

// builder grows the trie with map edges, then compile lays it out flat.
type builder struct {
	sym   map[rune]int32
	edges []map[int32]int32
	out   []int32
	depth []int32
}

func newBuilder() *builder {
	return &builder{sym: map[rune]int32{}, edges: []map[int32]int32{{}}, out: []int32{-1}, depth: []int32{0}}
}

func (b *builder) insert(text string, term int32) {
	node := int32(0)
	for _, r := range text {
		f, ok := Fold(r)
		if !ok {
			continue
		}
		s, ok := b.sym[f]
		if !ok {
			s = int32(len(b.sym) + 1)
			b.sym[f] = s
		}
		nx, ok := b.edges[node][s]
		if !ok {
			nx = int32(len(b.edges))
			b.edges = append(b.edges, map[int32]int32{})
			b.out = append(b.out, -1)
			b.depth = append(b.depth, b.depth[node]+1)
			b.edges[node][s] = nx
		}
		node = nx
	}
	if node != 0 && b.out[node] < 0 {
		b.out[node] = term
	}
}

func (b *builder) compile() *Matcher {
	n := len(b.edges)
	m := &Matcher{symLow: make([]int32, 0x10000), symHigh: map[rune]int32{}, root: make([]int32, len(b.sym)+1),
		nodes: make([]node, n)}
	for r := range rune(0x10000) {
		if f, ok := Fold(r); !ok {
			m.symLow[r] = skip
		} else {
			m.symLow[r] = b.sym[f]
		}
	}
	for r, s := range b.sym {
		if r >= 0x10000 {
			m.symHigh[r] = s
		}
	}
	maxDepth := int32(1)
	for nd, e := range b.edges {
		m.nodes[nd] = node{first: int32(len(m.edges)), count: int32(len(e)), out: b.out[nd]}
		keys := make([]int32, 0, len(e))
		for s := range e {
			keys = append(keys, s)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		for _, s := range keys {
			m.edges = append(m.edges, edge{s, e[s]})
		}
		maxDepth = max(maxDepth, b.depth[nd])
	}
	m.longest = int(maxDepth)
	for s, nx := range b.edges[0] {
		m.root[s] = nx
	}
	return m
}
