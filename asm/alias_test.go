package asm

import (
	"math"
	"math/rand"
	"testing"
)

// TestInPlace: the elementwise kernels documented to allow dst = x (Scale,
// Exp, SoftmaxScaled) give, at every level and on every length up to
// 2·16·4+1 and a few large ones, from offsets 0..15, the same bits in place
// as into a separate dst.
func TestInPlace(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	src := lseSrc(r, shapeMaxLen+shapeOffsets, 20)
	check := func(name string, run func(dst, x []float32)) {
		for _, n := range shapeLengths {
			for off := range shapeOffsets {
				x := src[off : off+n]
				want := make([]float32, n)
				run(want, x)
				buf := append([]float32(nil), src[:off+n]...)
				got := buf[off : off+n]
				run(got, got)
				for k := range got {
					if math.Float32bits(got[k]) != math.Float32bits(want[k]) {
						t.Fatalf("%s n=%d offset=%d: in place, element %d is %v, %v into a separate dst", name, n, off, k, got[k], want[k])
					}
				}
			}
		}
	}
	for _, l := range scaleImpl.Levels() {
		f, _ := scaleImpl.At(l)
		check("Scale/"+l.String(), func(dst, x []float32) { f(dst, x, 0.37) })
	}
	for _, l := range expImpl.Levels() {
		f, _ := expImpl.At(l)
		check("Exp/"+l.String(), f)
	}
	for _, l := range softmaxRowImpl.Levels() {
		f, _ := softmaxRowImpl.At(l)
		check("SoftmaxScaled/"+l.String(), func(dst, z []float32) { f(dst, z, 3, 0.5) })
	}
}
