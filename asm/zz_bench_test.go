package asm

import (
	"math/rand"
	"testing"
)

func BenchmarkZZHeadGemm(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	n, c, d := 256, 2048, 512
	x, w, z := randGemm(r, n*d), randGemm(r, c*d), make([]float32, n*c)
	rs, cs := randGemm(r, n), randGemm(r, c)
	for _, bf := range []bool{false, true} {
		name := "f32"
		if bf {
			name = "bf16"
		}
		var pa PackedA
		if bf {
			pa.PackBF16(n, d, x, d)
		} else {
			pa.Pack(n, d, x, d)
		}
		b.Run("NT-"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				GemmNTPackedScaled(c, &pa, w, d, rs, cs, z, c)
			}
			b.ReportMetric(2*float64(n*c*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		dx := make([]float32, n*d)
		b.Run("NN-"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if bf {
					GemmNNBF16(n, d, c, 1, z, c, w, d, 0, dx, d)
				} else {
					GemmNN(n, d, c, 1, z, c, w, d, 0, dx, d)
				}
			}
			b.ReportMetric(2*float64(n*c*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		var pb PackedB
		if bf {
			pb.PackBF16(n, d, x, d)
		} else {
			pb.Pack(n, d, x, d)
		}
		dw := make([]float32, c*d)
		b.Run("TN-"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				GemmTNPacked(c, 1, z, c, &pb, 0, dw, d)
			}
			b.ReportMetric(2*float64(n*c*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

func BenchmarkZZPeak(b *testing.B) {
	for name, p := range map[string]fmaPeak{"fma": fmaPeaks[3-1], "bf16": bf16Peaks[2]} {
		b.Run(name, func(b *testing.B) {
			p.run(b.N)
			b.ReportMetric(float64(p.flopsPerIter)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
