package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
)

// vector returns a deterministic pseudo-random embedding of seed with values
// in [-1, 1): the same input always embeds the same, different inputs differ.
func vector(seed string, dims int) []float32 {
	h := fnv.New64a()
	h.Write([]byte(seed))
	x := h.Sum64()
	out := make([]float32, dims)
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407 // Knuth's MMIX LCG
		out[i] = float32(int32(x>>32)) / (1 << 31)
	}
	return out
}

// base64Vector encodes v the way OpenAI's encoding_format=base64 does:
// little-endian float32s, standard base64.
func base64Vector(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}
