package main

import (
	"fmt"
	"math/rand"
	"runtime"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
	"github.com/marginloss/marginloss/loss"
)

// headKinds are the margin heads at the parameters of their papers.
var headKinds = []struct {
	name string
	make func() *loss.MarginSoftmax
}{
	{"ArcFace", func() *loss.MarginSoftmax { return loss.ArcFace(64, 0.5) }},
	{"CosFace", func() *loss.MarginSoftmax { return loss.CosFace(64, 0.35) }},
	{"CombinedMargin", func() *loss.MarginSoftmax { return loss.CombinedMargin(64, 1, 0.3, 0.2) }},
	{"SphereFace", func() *loss.MarginSoftmax { return loss.SphereFace(4, 0) }},
	{"LargeMargin", func() *loss.MarginSoftmax { return loss.LargeMargin(4, 0) }},
	{"AdaFace", func() *loss.MarginSoftmax { return loss.AdaFace(64, 0.4, 0.333, 0.01) }},
	{"MagFace", func() *loss.MarginSoftmax { return loss.MagFace(64, 10, 110, 0.45, 0.8, 35) }},
	{"ElasticArcFace", func() *loss.MarginSoftmax { return loss.ElasticArcFace(64, 0.5, 0.05) }},
	{"ElasticCosFace", func() *loss.MarginSoftmax { return loss.ElasticCosFace(64, 0.35, 0.05) }},
	{"CurricularFace", func() *loss.MarginSoftmax { return loss.CurricularFace(64, 0.5, 0.01) }},
}

// BenchmarkHead is every margin head (kind=…-bf16: at Precision =
// BFloat16), forward and backward with dx and dw,
// at N=256, D=512 and C classes, on procs goroutines (GOMAXPROCS), at each
// level. The unit is the 6·N·D·C flops of the three GEMMs; at the assembly
// levels it also reports the FMA peak of the level's vector width, measured
// in bursts between the calls (outside the timed region) on one goroutine,
// and the fraction of it reached per goroutine (peak-frac = GFLOP/s ÷
// (procs·peak)):
//
//	go test ./bench -run '^$' -bench 'Head/kind=ArcFace/C=10000/procs=1/avx512' -benchtime 20x -count 5
//
// C=100000 keeps no tiles (above the default TileBudget), so its backward
// pass recomputes them: 8·N·D·C flops executed for the 6·N·D·C counted.
func BenchmarkHead(b *testing.B) {
	r := rand.New(rand.NewSource(7))
	n, d := 256, 512
	probe := lookupFMAPeak(b)
	for _, c := range []int{1000, 10000, 100000} {
		x, w := randMatrix(r, n, d), randMatrix(r, c, d)
		labels := make([]int32, n)
		for i := range labels {
			labels[i] = int32(r.Intn(c))
		}
		dx, dw := randMatrix(r, n, d), randMatrix(r, c, d)
		for _, k := range headKinds {
			for _, prec := range []loss.Precision{loss.Float32, loss.BFloat16} {
				for _, procs := range []int{1, 2} {
					head := k.make()
					head.Precision = prec
					name := k.name
					if prec == loss.BFloat16 {
						name += "-bf16"
					}
					forEachLevel(b, fmt.Sprintf("kind=%s/C=%d/procs=%d", name, c, procs), func(b *testing.B) {
						defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
						peak := peakMeter{l: simd.Active(), probe: probe}
						if _, err := head.Loss(x, w, labels, &dx, &dw); err != nil { // warm the scratch
							b.Fatal(err)
						}
						b.ResetTimer()
						for b.Loop() {
							if _, err := head.Loss(x, w, labels, &dx, &dw); err != nil {
								b.Fatal(err)
							}
							b.StopTimer()
							peak.burst()
							b.StartTimer()
						}
						g := 6 * float64(n*d*c) * float64(b.N) / b.Elapsed().Seconds() / 1e9
						b.ReportMetric(g, "GFLOP/s")
						if p := peak.GFLOPs(); p > 0 {
							b.ReportMetric(p, "peak-GFLOP/s")
							b.ReportMetric(g/(float64(procs)*p), "peak-frac")
						}
					})
				}
			}
		}
	}
}
