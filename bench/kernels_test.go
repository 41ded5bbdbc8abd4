package main

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// benchLevels runs call as sub-benchmark kernel/n=n/level for every level
// of asm's table registered as kernel that this CPU and build can run,
// calling the body directly (no wrapper), and reports the bytes of the
// slices read and written, once each, per second.
// A variant, when given, names the case between the kernel and n.
func benchLevels[F any](b *testing.B, kernel string, n, bytes int, call func(F), variant ...string) {
	tab, err := simd.TableOf[F](kernel)
	if err != nil {
		b.Fatal(err)
	}
	name := kernel
	for _, v := range variant {
		name += "/" + v
	}
	name = fmt.Sprintf("%s/n=%d", name, n)
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

// BenchmarkKernels times the normalize, lse, margin and optimizer kernels at every level, at a
// row length of the ArcFace head (512) and a class tile (4096):
//
//	go test ./bench -run '^$' -bench 'Kernels/MaxSumExp/n=4096' -benchtime 200ms
func BenchmarkKernels(b *testing.B) {
	r := rand.New(rand.NewSource(9))
	for _, n := range []int{512, 4096} {
		x, y, dst := randSlice(r, n), randSlice(r, n), make([]float32, n)
		z := make([]float32, n)
		for i := range z {
			z[i] = 4 * float32(r.NormFloat64())
		}
		benchLevels(b, "SumSquares", n, 4*n, func(f func([]float32) float32) {
			sinkF32 += f(x)
		})
		benchLevels(b, "Scale", n, 8*n, func(f func(dst, x []float32, a float32)) {
			f(dst, x, 0.37)
		})
		benchLevels(b, "NormalizeBackward", n, 12*n, func(f func(dx, dy, x []float32, inv, radial float32)) {
			f(dst, y, x, 0.05, 0.3)
		})
		benchLevels(b, "Exp", n, 8*n, func(f func(dst, x []float32)) {
			f(dst, z)
		})
		benchLevels(b, "MaxSumExp", n, 4*n, func(f func(z []float32, m, s float32) (float32, float32)) {
			m, s := f(z, 1, 2)
			sinkF32 += m + s
		})
		benchLevels(b, "SoftmaxScaled", n, 8*n, func(f func(dst, z []float32, lse, scale float32)) {
			f(dst, z, 12, 30)
		})
		// The optimizer steps, in place (p, buf, m and v drift; the
		// arithmetic per element does not depend on the values).
		p, buf, m, v := randSlice(r, n), make([]float32, n), make([]float32, n), make([]float32, n)
		benchLevels(b, "SGDStep", n, 20*n, func(f func(p, g, buf []float32, c asm.SGDCoef)) {
			f(p, x, buf, asm.SGDCoef{NegLR: -1e-6, WeightDecay: 5e-4, Momentum: 0.9, Dampening1: 1,
				Flags: uint32(asm.SGDWeightDecay | asm.SGDMomentum)})
		}, "momentum-wd")
		benchLevels(b, "AdamWStep", n, 28*n, func(f func(p, g, m, v []float32, c asm.AdamWCoef)) {
			f(p, x, m, v, asm.AdamWCoef{Decay: 1, Beta1: 0.9, Beta1c: 0.1, Beta2: 0.999, Beta2c: 0.001, BC2Sqrt: 0.5, Eps: 1e-8, NegStep: -1e-6})
		})
		t := make([]float32, n)
		for i := range t {
			t[i] = float32(2*r.Float64() - 1)
		}
		for _, g := range []struct {
			name string
			m    asm.Margin
		}{
			{"arc", asm.NewMargin(asm.MarginArc, 1, 0.5, 0, 0, 0)},
			{"combined", asm.NewMargin(asm.MarginCombined, 0.9, 0.4, 0.15, 0, 0)},
			{"psi", asm.NewMargin(asm.MarginPsi, 0, 0, 0, 4, 5)},
		} {
			benchLevels(b, "MarginForward", n, 12*n, func(f func(phi, dphi, t []float32, g *asm.Margin)) {
				f(dst, y, t, &g.m)
			}, g.name)
		}
	}
}
