package bench

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// benchLevels runs call as sub-benchmark name/level for every level of tab
// that this CPU and build can run, calling the body directly (no wrapper),
// and reports the bytes of the slices read and written, once each, per
// second.
func benchLevels[F any](b *testing.B, name string, tab *simd.Table[F], bytes int, call func(F)) {
	for _, l := range tab.Levels() {
		f, _ := tab.At(l)
		b.Run(name+"/"+l.String(), func(b *testing.B) {
			for b.Loop() {
				call(f)
			}
			b.ReportMetric(float64(bytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

var sinkF32 float32

// BenchmarkKernels times the normalize and lse kernels at every level, at a
// row length of the ArcFace head (512) and a class tile (4096):
//
//	go test ./bench -run '^$' -bench 'Kernels/MaxSumExp/n=4096' -benchtime 200ms
func BenchmarkKernels(b *testing.B) {
	r := rand.New(rand.NewSource(9))
	nk, lk := asm.NormalizeKernels, asm.LSEKernels
	for _, n := range []int{512, 4096} {
		x, y, dst := randSlice(r, n), randSlice(r, n), make([]float32, n)
		z := make([]float32, n)
		for i := range z {
			z[i] = 4 * float32(r.NormFloat64())
		}
		tag := func(kernel string) string { return fmt.Sprintf("%s/n=%d", kernel, n) }
		benchLevels(b, tag("SumSquares"), nk.SumSquares, 4*n, func(f func([]float32) float32) {
			sinkF32 += f(x)
		})
		benchLevels(b, tag("Scale"), nk.Scale, 8*n, func(f func(dst, x []float32, a float32)) {
			f(dst, x, 0.37)
		})
		benchLevels(b, tag("NormalizeBackward"), nk.NormalizeBackward, 12*n, func(f func(dx, dy, x []float32, inv, radial float32)) {
			f(dst, y, x, 0.05, 0.3)
		})
		benchLevels(b, tag("Exp"), lk.Exp, 8*n, func(f func(dst, x []float32)) {
			f(dst, z)
		})
		benchLevels(b, tag("MaxSumExp"), lk.MaxSumExp, 4*n, func(f func(z []float32, m, s float32) (float32, float32)) {
			m, s := f(z, 1, 2)
			sinkF32 += m + s
		})
		benchLevels(b, tag("SoftmaxScaled"), lk.SoftmaxScaled, 8*n, func(f func(dst, z []float32, lse, scale float32)) {
			f(dst, z, 12, 30)
		})
	}
}
