package asm

import (
	"math"
	"math/rand"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestMain fails the run when a level named in MARGINLOSS_REQUIRE was not
// exercised by the level-vs-generic tests.
func TestMain(m *testing.M) { os.Exit(simd.RunRequired(m)) }

const eps32 = 0x1p-23

func randSlice(r *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64() * scale)
	}
	return s
}

// ulpDiff is the distance in units in the last place between two finite
// float32 of the same sign (or zero).
func ulpDiff(a, b float32) int64 {
	ia, ib := int64(math.Float32bits(a)), int64(math.Float32bits(b))
	if ia > ib {
		return ia - ib
	}
	return ib - ia
}

// TestExpULP measures expf against the correctly rounded e^x (float64
// math.Exp rounded once) over a dense sample of every float32 input that
// gives a finite non-zero result, subnormals included. The documented bound
// is 2 ULP.
func TestExpULP(t *testing.T) {
	var worst int64
	var worstX float32
	check := func(x float32) {
		want := float32(math.Exp(float64(x)))
		got := expf(x)
		if d := ulpDiff(got, want); d > worst {
			worst, worstX = d, x
		}
	}
	// Every 61st bit pattern of negative inputs down to expLo and positive up
	// to expHi, plus every input in [-1, 1] at a finer stride.
	for b := uint32(0); b < 0x42b17218; b += 61 { // 0 .. 88.72
		check(math.Float32frombits(b))
		check(-math.Float32frombits(b))
	}
	for b := uint32(0x42b17218); b <= 0x42cff1b5; b += 7 { // -88.72 .. -103.97 (subnormal results)
		check(-math.Float32frombits(b))
	}
	for b := uint32(0x3f000000); b < 0x3f800000; b += 3 {
		check(math.Float32frombits(b))
		check(-math.Float32frombits(b))
	}
	t.Logf("expf worst error %d ULP at x = %v", worst, worstX)
	require.LessOrEqual(t, worst, int64(2), "expf error at x = %v", worstX)

	require.True(t, math.IsNaN(float64(expf(float32(math.NaN())))))
	require.True(t, math.IsInf(float64(expf(float32(math.Inf(1)))), 1))
	require.Zero(t, expf(float32(math.Inf(-1))))
	require.True(t, math.IsInf(float64(expf(89)), 1))
	require.Zero(t, expf(-104))
	require.Equal(t, float32(1), expf(0))
}

func TestL2NormRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    []float32
		want float64
	}{
		{"huge", []float32{3e38, 3e38, -1e38}, math.Sqrt(9e76 + 9e76 + 1e76)},
		{"large", []float32{1e20, 1e20}, math.Sqrt2 * 1e20},
		{"tiny", []float32{1e-30, -1e-30, 1e-30}, math.Sqrt(3) * 1e-30},
		{"subnormal", []float32{1e-44, 1e-44}, float64(float32(1e-44)) * math.Sqrt2},
		{"zero", []float32{0, 0, 0}, 0},
		{"empty", nil, 0},
	} {
		got := float64(L2Norm(tc.x))
		if tc.want > math.MaxFloat32 {
			require.True(t, math.IsInf(got, 1), tc.name)
			continue
		}
		require.InDelta(t, tc.want, got, 4*eps32*tc.want+1e-45, tc.name)
	}
	require.True(t, math.IsNaN(float64(L2Norm([]float32{1, float32(math.NaN())}))))
	require.True(t, math.IsInf(float64(L2Norm([]float32{1, float32(math.Inf(-1))})), 1))
}

func naiveGemm(m, n, k int, at func(i, p int) float32, bt func(p, j int) float32) (c, absSum []float64) {
	c, absSum = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			for p := 0; p < k; p++ {
				v := float64(at(i, p)) * float64(bt(p, j))
				c[i*n+j] += v
				absSum[i*n+j] += math.Abs(v)
			}
		}
	}
	return c, absSum
}

// TestGemm checks the three shapes against a float64 reference with strides
// larger than the rows, α and β, and β = 0 ignoring NaN in C.
func TestGemm(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	type shape struct{ m, n, k int }
	shapes := []shape{{1, 1, 1}, {2, 3, 4}, {3, 5, 7}, {5, 4, 1}, {7, 9, 33}, {16, 33, 17}, {1, 600, 3}, {9, 520, 20}}
	for _, s := range shapes {
		for _, beta := range []float32{0, 1, 0.5} {
			alpha := float32(0.75)
			lda, ldb, ldc := s.k+3, s.k+1, s.n+2
			// NT: A m×k, B n×k
			a, b := randSlice(r, s.m*lda, 1), randSlice(r, s.n*ldb, 1)
			c0 := randSlice(r, s.m*ldc, 1)
			if beta == 0 {
				for i := range c0 {
					c0[i] = float32(math.NaN())
				}
			}
			check := func(name string, f gemmFunc, a []float32, lda int, b []float32, ldb int, at func(i, p int) float32, bt func(p, j int) float32) {
				c := append([]float32(nil), c0...)
				f(s.m, s.n, s.k, alpha, a, lda, b, ldb, beta, c, ldc)
				want, abs := naiveGemm(s.m, s.n, s.k, at, bt)
				for i := 0; i < s.m; i++ {
					for j := 0; j < s.n; j++ {
						w := float64(alpha) * want[i*s.n+j]
						bound := float64(s.k+8) * eps32 * float64(alpha) * abs[i*s.n+j]
						if beta != 0 {
							w += float64(beta) * float64(c0[i*ldc+j])
							bound += 2 * eps32 * math.Abs(float64(beta)*float64(c0[i*ldc+j]))
						}
						require.InDelta(t, w, float64(c[i*ldc+j]), bound+1e-30, "%s %v β=%v (%d,%d)", name, s, beta, i, j)
					}
					for j := s.n; j < ldc; j++ { // padding untouched
						require.Equal(t, math.Float32bits(c0[i*ldc+j]), math.Float32bits(c[i*ldc+j]), "%s wrote padding", name)
					}
				}
			}
			for _, l := range gemmNTImpl.Levels() {
				f, _ := gemmNTImpl.At(l)
				check("NT/"+l.String(), f, a, lda, b, ldb, func(i, p int) float32 { return a[i*lda+p] }, func(p, j int) float32 { return b[j*ldb+p] })
			}
			// NN: A m×k, B k×n
			bn := randSlice(r, s.k*(s.n+4), 1)
			for _, l := range gemmNNImpl.Levels() {
				f, _ := gemmNNImpl.At(l)
				check("NN/"+l.String(), f, a, lda, bn, s.n+4, func(i, p int) float32 { return a[i*lda+p] }, func(p, j int) float32 { return bn[p*(s.n+4)+j] })
			}
			// TN: A k×m, B k×n
			at := randSlice(r, s.k*(s.m+2), 1)
			for _, l := range gemmTNImpl.Levels() {
				f, _ := gemmTNImpl.At(l)
				check("TN/"+l.String(), f, at, s.m+2, bn, s.n+4, func(i, p int) float32 { return at[p*(s.m+2)+i] }, func(p, j int) float32 { return bn[p*(s.n+4)+j] })
			}
		}
	}
}

func TestGemmPanicsOnShortOperand(t *testing.T) {
	require.Panics(t, func() { GemmNT(2, 2, 2, 1, make([]float32, 3), 2, make([]float32, 4), 2, 0, make([]float32, 4), 2) })
	require.Panics(t, func() { GemmNN(2, 2, 2, 1, make([]float32, 4), 2, make([]float32, 4), 1, 0, make([]float32, 4), 2) })
	require.NotPanics(t, func() { GemmTN(0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1) })
}
