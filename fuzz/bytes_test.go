package fuzz

import (
	"encoding/binary"
	"math"
)

// byteReader turns fuzz bytes into sizes and float32 bit patterns. Past the
// end of the bytes u8 yields 0 and next32 reports false, counting in k the
// floats it could not read, so that each target can fill in its own
// pattern and short inputs still give long vectors.
type byteReader struct {
	b []byte
	k int
}

func (r *byteReader) u8() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *byteReader) u16() uint16 { return uint16(r.u8()) | uint16(r.u8())<<8 }

// next32 returns the next four bytes as a float32 bit pattern, or false
// (and drops any leftover bytes) when fewer than four remain.
func (r *byteReader) next32() (float32, bool) {
	if len(r.b) < 4 {
		r.b = nil
		r.k++
		return 0, false
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v, true
}
