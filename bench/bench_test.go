package main

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
)

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

func randMatrix(r *rand.Rand, rows, cols int) loss.Matrix {
	return loss.Matrix{Rows: rows, Cols: cols, Data: randSlice(r, rows*cols)}
}

// forEachLevel runs fn as sub-benchmark name/level for every kernel level
// this CPU and build can run, forcing the dispatch to it, so that levels are
// compared within one run.
func forEachLevel(b *testing.B, name string, fn func(b *testing.B)) {
	for _, l := range simd.Usable() {
		b.Run(name+"/"+l.String(), func(b *testing.B) {
			restore, err := simd.Force(l)
			if err != nil {
				b.Fatal(err)
			}
			defer restore()
			fn(b)
		})
	}
}

// fmaPeakProbe is asm's FMA peak probe, registered in internal/simd as
// "FMAPeakLoop": iters iterations of 12 independent vector FMAs at level l,
// flopsPerIter flops each; ok is false when the CPU or build lacks l.
type fmaPeakProbe = func(l simd.Level, iters int) (flopsPerIter int, ok bool)

func lookupFMAPeak(b *testing.B) fmaPeakProbe {
	probe, err := simd.Lookup[fmaPeakProbe]("FMAPeakLoop")
	if err != nil {
		b.Fatal(err)
	}
	return probe
}

func gflops(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// BenchmarkArcFaceHead is the whole ArcFace head, forward and backward, at
// N=256, D=512 and C classes, at both precisions: the 6·N·D·C flops of its
// three GEMMs are the unit. tiles=kept sets TileBudget to the N×C logits'
// 4·N·C bytes, so the backward pass reads the forward tiles (the default
// 16 MiB budget does so up to C = 16k at this N; 98 MiB at C = 100k);
// tiles=recompute forces the backward pass to recompute them (8·N·D·C
// flops executed), as it does beyond the budget. Set the goroutines with
// GOMAXPROCS: with -cpu 1,2 the testing package runs the first value's
// b.Loop sub-benchmarks at the list's last value (golang/go#49980), so
// both labels may time the same thing:
//
//	GOMAXPROCS=1 go test ./bench -run '^$' -bench 'ArcFaceHead/C=100000/.*/.*/avx512$' -benchtime 5x -count 6
func BenchmarkArcFaceHead(b *testing.B) {
	r := rand.New(rand.NewSource(4))
	n, d := 256, 512
	for _, c := range []int{1000, 10000, 100000} {
		// the inputs (400 MiB at C = 100k) are made only where -bench
		// selects this C
		b.Run(fmt.Sprintf("C=%d", c), func(b *testing.B) {
			x, w := randMatrix(r, n, d), randMatrix(r, c, d)
			labels := make([]int32, n)
			for i := range labels {
				labels[i] = int32(r.Intn(c))
			}
			dx, dw := randMatrix(r, n, d), randMatrix(r, c, d)
			for _, prec := range []loss.Precision{loss.Float32, loss.BFloat16} {
				for _, tiles := range []struct {
					name   string
					budget int
				}{{"kept", 4 * n * c}, {"recompute", -1}} {
					head := loss.ArcFace(64, 0.5)
					head.TileBudget, head.Precision = tiles.budget, prec
					forEachLevel(b, fmt.Sprintf("%s/tiles=%s", prec, tiles.name), func(b *testing.B) {
						for b.Loop() {
							if _, err := head.Loss(x, w, labels, &dx, &dw); err != nil {
								b.Fatal(err)
							}
						}
						gflops(b, 6*float64(n*d*c))
					})
				}
			}
		})
	}
}
