package main

import (
	"fmt"
	"math/rand"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// BenchmarkFusedStep is one training step of the classification layer,
// ArcFace forward and backward with dx at N=256, D=512 and momentum SGD on
// W, side by side:
//
//   - separate: Loss into a C×D dw, then optim.SGD.Step(W, dw);
//   - fused: Loss with FusedStep and dw = nil (each tile of W stepped in the
//     backward pass).
//
// extra-MiB is the live heap beyond W and the optimizer state after a
// warm-up call (the steps allocate nothing after it, so this is also the
// peak): dw, the head's workspace and the step's. At C=1M it needs about
// 6 GiB for the separate path (W, dw, momentum) and 4 GiB for the fused one:
//
//	go test ./bench -run '^$' -bench 'FusedStep' -benchtime 3x
func BenchmarkFusedStep(b *testing.B) {
	const n, d = 256, 512
	for _, c := range []int{100_000, 1_000_000} {
		for _, mode := range []string{"separate", "fused"} {
			b.Run(fmt.Sprintf("C=%d/%s", c, mode), func(b *testing.B) {
				runtime.GC()
				debug.FreeOSMemory()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				r := rand.New(rand.NewSource(11))
				x := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				labels := make([]int32, n)
				for i := range labels {
					labels[i] = int32(r.Intn(c))
				}
				w := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
				if err := optim.Normal(w.Data, 0, 0.01, 1); err != nil {
					b.Fatal(err)
				}
				dx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
				opt := optim.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
				var st optim.State
				head := loss.ArcFace(64, 0.5)
				var step func()
				if mode == "separate" {
					dw := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
					step = func() {
						if _, err := head.Loss(x, w, labels, &dx, &dw); err != nil {
							b.Fatal(err)
						}
						if err := opt.Step(w.Data, dw.Data, &st); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					head.FusedStep = opt.Fused(&st)
					step = func() {
						if _, err := head.Loss(x, w, labels, &dx, nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				step() // warm-up: sizes the workspaces and the State
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				wBytes := float64(4 * c * d)
				extra := float64(after.HeapInuse) - float64(before.HeapInuse) - 2*wBytes // W and the momentum buffer
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				b.StopTimer()
				b.ReportMetric(extra/(1<<20), "extra-MiB")
				runtime.KeepAlive(w)
			})
		}
	}
}

// BenchmarkFusedStepPartialFC is BenchmarkFusedStep through Partial FC
// (SampleRate 0.1, the rows of S stepped lazily): separate is PartialFC.Loss
// into a C×D dw (KeepUnsampled) and SGD.StepRows on Sampled(); fused steps
// the gathered rows in the head's backward pass and writes them back.
//
//	go test ./bench -run '^$' -bench 'FusedStepPartialFC' -benchtime 3x
func BenchmarkFusedStepPartialFC(b *testing.B) {
	const n, d = 256, 512
	for _, c := range []int{1_000_000} {
		for _, mode := range []string{"separate", "fused"} {
			b.Run(fmt.Sprintf("C=%d/%s", c, mode), func(b *testing.B) {
				runtime.GC()
				debug.FreeOSMemory()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				r := rand.New(rand.NewSource(12))
				x := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
				for i := range x.Data {
					x.Data[i] = float32(r.NormFloat64())
				}
				labels := make([]int32, n)
				for i := range labels {
					labels[i] = int32(r.Intn(c))
				}
				w := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
				if err := optim.Normal(w.Data, 0, 0.01, 1); err != nil {
					b.Fatal(err)
				}
				dx := loss.Matrix{Rows: n, Cols: d, Data: make([]float32, n*d)}
				opt := optim.SGD{LR: 0.1, Momentum: 0.9, WeightDecay: 5e-4}
				var st optim.State
				pfc := &loss.PartialFC{Head: loss.ArcFace(64, 0.5), SampleRate: 0.1, Seed: 3, KeepUnsampled: true}
				var step func()
				if mode == "separate" {
					dw := loss.Matrix{Rows: c, Cols: d, Data: make([]float32, c*d)}
					var rows []int32
					step = func() {
						if _, err := pfc.Loss(x, w, labels, &dx, &dw); err != nil {
							b.Fatal(err)
						}
						rows = pfc.AppendSampled(rows[:0])
						if err := opt.StepRows(w, dw, rows, &st); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					pfc.Head.FusedStep = opt.Fused(&st)
					step = func() {
						if _, err := pfc.Loss(x, w, labels, &dx, nil); err != nil {
							b.Fatal(err)
						}
					}
				}
				step()
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				// W, the momentum buffer and the per-row step counts
				state := float64(4*c*d) + float64(8*c)
				extra := float64(after.HeapInuse) - float64(before.HeapInuse) - float64(4*c*d) - state
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				b.StopTimer()
				b.ReportMetric(extra/(1<<20), "extra-MiB")
				runtime.KeepAlive(w)
			})
		}
	}
}
