package asm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestRegistry: every table and hook that fuzz/ and bench/ look up is
// registered under the name and type hooks.go documents.
func TestRegistry(t *testing.T) {
	same := func(name string, want any, got any, err error) {
		t.Helper()
		require.NoError(t, err, name)
		require.Same(t, want, got, name)
	}
	gemm, err := simd.TableOf[func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)]("GemmNT")
	same("GemmNT", gemmNTImpl, gemm, err)
	gemm, err = simd.TableOf[func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)]("GemmNN")
	same("GemmNN", gemmNNImpl, gemm, err)
	gemm, err = simd.TableOf[func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)]("GemmTN")
	same("GemmTN", gemmTNImpl, gemm, err)
	ss, err := simd.TableOf[func(x []float32) float32]("SumSquares")
	same("SumSquares", sumSquaresImpl, ss, err)
	sc, err := simd.TableOf[func(dst, x []float32, a float32)]("Scale")
	same("Scale", scaleImpl, sc, err)
	nb, err := simd.TableOf[func(dx, dy, x []float32, inv, radial float32)]("NormalizeBackward")
	same("NormalizeBackward", normBackwardImpl, nb, err)
	ex, err := simd.TableOf[func(dst, x []float32)]("Exp")
	same("Exp", expImpl, ex, err)
	ms, err := simd.TableOf[func(z []float32, m, s float32) (float32, float32)]("MaxSumExp")
	same("MaxSumExp", maxSumExpImpl, ms, err)
	sm, err := simd.TableOf[func(dst, z []float32, lse, scale float32)]("SoftmaxScaled")
	same("SoftmaxScaled", softmaxRowImpl, sm, err)
	mf, err := simd.TableOf[func(phi, dphi, t []float32, g *Margin)]("MarginForward")
	same("MarginForward", marginImpl, mf, err)

	mu, err := simd.TableOf[func(dst, x, y []float32)]("Mul")
	same("Mul", mulImpl, mu, err)
	ad, err := simd.TableOf[func(dst, x, y []float32)]("Add")
	same("Add", addImpl, ad, err)
	cg, err := simd.TableOf[func(z, dz []float32, lo, hi float32)]("ClampGrad")
	same("ClampGrad", clampGradImpl, cg, err)
	hn, err := simd.TableOf[func(z, dz []float32, thr, t, inv float32)]("HardNegatives")
	same("HardNegatives", hardNegativesImpl, hn, err)

	mr, err := simd.TableOf[func(phi, dphi, t []float32, g *Margin)]("MarginForwardRows")
	same("MarginForwardRows", marginRowsImpl, mr, err)
	sg, err := simd.TableOf[func(p, g, buf []float32, c SGDCoef)]("SGDStep")
	same("SGDStep", sgdStepImpl, sg, err)
	aw, err := simd.TableOf[func(p, g, m, v []float32, c AdamWCoef)]("AdamWStep")
	same("AdamWStep", adamWStepImpl, aw, err)

	require.Equal(t, []string{"AdamWStep", "Add", "ClampGrad", "Exp", "GemmNN", "GemmNT", "GemmTN", "HardNegatives", "MarginForward",
		"MarginForwardRows", "MaxSumExp", "Mul", "NormalizeBackward", "SGDStep", "Scale", "SoftmaxScaled", "SumSquares"}, simd.Kernels())

	e, err := simd.Lookup[func(float32) float32]("Expf")
	require.NoError(t, err)
	require.Equal(t, expf(-1.5), e(-1.5))
	g := NewMargin(MarginCombined, 0.9, 0.4, 0.15, 0, 0)
	ev, err := simd.Lookup[func(*Margin, float64) (float64, float64)]("Margin.Eval")
	require.NoError(t, err)
	p, d := ev(&g, 0.3)
	wp, wd := g.eval(0.3)
	require.Equal(t, [2]float64{wp, wd}, [2]float64{p, d})
	eb, err := simd.Lookup[func(*Margin, float32) (float64, float64)]("Margin.ErrorBound")
	require.NoError(t, err)
	p, d = eb(&g, 0.3)
	wp, wd = g.errorBound(0.3)
	require.Equal(t, [2]float64{wp, wd}, [2]float64{p, d})
	probe, err := simd.Lookup[func(simd.Level, int) (int, bool)]("FMAPeakLoop")
	require.NoError(t, err)
	_, ok := probe(simd.Generic, 1)
	require.False(t, ok, "no FMA probe at generic")
}

// TestFMAPeakProbe: every level with a probe runs it (the loop returns, for
// zero and a few iterations) and counts its flops.
func TestFMAPeakProbe(t *testing.T) {
	probe, err := simd.Lookup[func(simd.Level, int) (int, bool)]("FMAPeakLoop")
	require.NoError(t, err)
	for _, l := range simd.Usable() {
		flops, ok := probe(l, 0)
		if l == simd.Generic {
			require.False(t, ok)
			continue
		}
		require.True(t, ok, "%v: no FMA peak probe", l)
		require.Positive(t, flops, "%v", l)
		f2, _ := probe(l, 1000)
		require.Equal(t, flops, f2)
	}
}
