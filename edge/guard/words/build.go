package words

import (
	"slices"
	"unicode/utf8"
)

// builder grows the trie with map edges, then compile lays it out flat.
type builder struct {
	sym   map[rune]int32
	edges []map[int32]int32
	out   []int32
	depth []int32
	first []int32 // the symbol by which a depth-1 node is reached
}

func newBuilder() *builder {
	return &builder{sym: map[rune]int32{}, edges: []map[int32]int32{{}}, out: []int32{-1}, depth: []int32{0}, first: []int32{0}}
}

func (b *builder) insert(text string, category int32) {
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
			b.first = append(b.first, s)
			b.edges[node][s] = nx
		}
		node = nx
	}
	if node != 0 && b.out[node] < 0 {
		b.out[node] = category
	}
}

func (b *builder) compile() *Matcher {
	n := len(b.edges)
	m := &Matcher{symLow: make([]int32, 0x10000), symHigh: map[rune]int32{}, root: make([]int32, len(b.sym)+1),
		nodes: make([]node, n), pairs: new(pairFilter)}
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
	// Nodes are laid out breadth first: the first levels, where nearly
	// every walk ends, sit together and stay in the cache.
	order, id := make([]int32, 0, n), make([]int32, n)
	order = append(order, 0)
	for k := 0; k < len(order); k++ {
		for _, s := range sortedKeys(b.edges[order[k]]) {
			nx := b.edges[order[k]][s]
			id[nx] = int32(len(order))
			order = append(order, nx)
		}
	}
	maxDepth := int32(1)
	for k, nd := range order {
		e := b.edges[nd]
		m.nodes[k] = node{first: int32(len(m.edges)), count: int32(len(e)), out: b.out[nd]}
		for _, s := range sortedKeys(e) {
			m.edges = append(m.edges, edge{s, id[e[s]]})
			if nd == 0 {
				m.root[s] = id[e[s]]
			} else if b.depth[nd] == 1 {
				m.pairs.add(b.first[nd], s)
			}
		}
		maxDepth = max(maxDepth, b.depth[nd])
	}
	m.longest = int(maxDepth)
	for c := range rune(utf8.RuneSelf) {
		if s := m.symLow[c]; s > 0 {
			m.asciiRoot[c] = m.root[s]
		}
	}
	return m
}

func sortedKeys(e map[int32]int32) []int32 {
	keys := make([]int32, 0, len(e))
	for s := range e {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	return keys
}

// pairFilter holds, hashed, the first two symbols of every term of two
// or more: a start whose next symbol is not in it begins no such term,
// and the trie is not touched. 64 Kbit (8 KiB) stays in the cache; with
// 10 000 terms about one start in nine passes it needlessly.
type pairFilter [1 << 10]uint64

func pairBit(a, b int32) uint32 { return (uint32(a)*0x9E3779B1 ^ uint32(b)*0x85EBCA77) >> 16 }

func (f *pairFilter) add(a, b int32) { h := pairBit(a, b); f[h>>6] |= 1 << (h & 63) }

func (f *pairFilter) has(a, b int32) bool { h := pairBit(a, b); return f[h>>6]&(1<<(h&63)) != 0 }
