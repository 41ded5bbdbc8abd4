package main

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// peakMeter times bursts of the FMA peak probe of level l's vector width
// between GEMM calls, so that peak and GEMM share the load of a busy
// machine; GFLOPs reports 0 at generic.
type peakMeter struct {
	l            simd.Level
	probe        fmaPeakProbe
	flops, nanos float64
}

func (p *peakMeter) burst() {
	const iters, reps = 1 << 14, 32
	start := time.Now()
	for range reps {
		f, ok := p.probe(p.l, iters)
		if !ok {
			return
		}
		p.flops += float64(f * iters)
	}
	p.nanos += float64(time.Since(start).Nanoseconds())
}

func (p *peakMeter) GFLOPs() float64 {
	if p.nanos == 0 {
		return 0
	}
	return p.flops / p.nanos
}

// gemmShapes are the ArcFace head's three GEMMs at N=256, D=512, C=10,000:
// logits X̂·Ŵᵀ (NT), dX̂ = G·Ŵ (NN) and dŴ = Gᵀ·X̂ (TN), 2.6 GFLOP each.
var gemmShapes = []struct {
	name    string
	m, n, k int
	call    func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	ar, ac  int // A's rows and columns
	br, bc  int
}{
	{"NT", 256, 10000, 512, asm.GemmNT, 256, 512, 10000, 512},
	{"NN", 256, 512, 10000, asm.GemmNN, 256, 10000, 10000, 512},
	{"TN", 10000, 512, 256, asm.GemmTN, 256, 10000, 256, 512},
}

// BenchmarkGemmHead runs each shape at each level on one goroutine and
// reports GFLOP/s and, for the assembly levels, the FMA peak of the same
// vector width (measured in bursts between the calls, outside the timed
// region) and the fraction of it reached (peak-frac):
//
//	go test ./bench -run '^$' -bench GemmHead -benchtime 5x -count 2
func BenchmarkGemmHead(b *testing.B) {
	r := rand.New(rand.NewSource(5))
	probe := lookupFMAPeak(b)
	for _, s := range gemmShapes {
		a, w := randSlice(r, s.ar*s.ac), randSlice(r, s.br*s.bc)
		c := make([]float32, s.m*s.n)
		flops := 2 * float64(s.m) * float64(s.n) * float64(s.k)
		name := fmt.Sprintf("%s/m=%d/n=%d/k=%d", s.name, s.m, s.n, s.k)
		forEachLevel(b, name, func(b *testing.B) {
			peak := peakMeter{l: simd.Active(), probe: probe}
			s.call(s.m, s.n, s.k, 1, a, s.ac, w, s.bc, 0, c, s.n) // warm the scratch
			for b.Loop() {
				s.call(s.m, s.n, s.k, 1, a, s.ac, w, s.bc, 0, c, s.n)
				b.StopTimer()
				peak.burst()
				b.StartTimer()
			}
			g := flops * float64(b.N) / b.Elapsed().Seconds() / 1e9
			b.ReportMetric(g, "GFLOP/s")
			if p := peak.GFLOPs(); p > 0 {
				b.ReportMetric(p, "peak-GFLOP/s")
				b.ReportMetric(g/p, "peak-frac")
			}
		})
	}
}

// BenchmarkGemmSmall is the per-tile shape of the head's logits pass (a
// class tile of 128) and a few small shapes, where packing and edges weigh
// more.
func BenchmarkGemmSmall(b *testing.B) {
	r := rand.New(rand.NewSource(6))
	for _, s := range []struct{ m, n, k int }{{256, 128, 512}, {64, 64, 64}, {13, 33, 17}, {1, 1, 512}} {
		a, w, c := randSlice(r, s.m*s.k), randSlice(r, s.n*s.k), make([]float32, s.m*s.n)
		forEachLevel(b, fmt.Sprintf("NT/m=%d/n=%d/k=%d", s.m, s.n, s.k), func(b *testing.B) {
			for b.Loop() {
				asm.GemmNT(s.m, s.n, s.k, 1, a, s.k, w, s.k, 0, c, s.n)
			}
			gflops(b, 2*float64(s.m*s.n*s.k))
		})
	}
}
