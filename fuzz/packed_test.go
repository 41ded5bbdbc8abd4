package fuzz

import (
	"fmt"
	"math"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// FuzzGemmPacked drives asm's packed-operand GEMM entries (PackedA and
// PackedB, GemmNTPacked, GemmTNPacked, GemmNTPackedScaled) through their
// public API, forcing each usable level in turn (simd.Force), with the
// shapes, strides, α, β and float32 bit patterns read from the bytes as the
// GEMM targets read them (packedBytes: A, B, C, rs and cs finite and at
// most 2^20 in magnitude, so that nothing overflows). At every level,
// generic included:
//
//   - GemmNTPacked and GemmTNPacked give bitwise what GemmNT and GemmTN give
//     at that level when m·n > 16 (their doc: below, GemmNT hands the product
//     to the generic level and the packed entries never do);
//   - each of them, at any m·n, is within the GEMM bound of the float64
//     reference: (k+9)·2⁻²³·Σ|terms| plus the underflow term η·(1+|α|)·
//     Σ_p (1 + |a| + |b|) + 2η, η = 2⁻¹⁴⁹, as in the GEMM targets;
//   - GemmNTPackedScaled gives bitwise rs[i]·(cs[j]·p) in float32, p being
//     GemmNTPacked's product with α = 1, β = 0 at that level (p is held to
//     the bound too), so that it is within |rs·cs|·(B + (|dot|+B)·2⁻²²) +
//     (1+|rs|)·η of rs·cs·dot, B being p's bound (one rounding of cs·p and
//     one of rs·(cs·p), each relative 2⁻²⁴ or absolute η/2 when it
//     underflows);
//   - every result is within twice its bound of the generic level's (both
//     are within the bound of the same exact value): the SIMD levels agree
//     with the generic one.
//
// C starts as NaN wherever its old contents must be ignored (β = 0, and
// always for the scaled entry); its padding columns n..ldc−1 hold −777 and
// must stay untouched. Pack must keep no reference to its source (the
// source is overwritten with NaN right after Pack), and one PackedA and one
// PackedB are repacked from level to level (and, with flag 8, after packing
// a larger all-NaN operand first), so that a stale buffer shows.
func FuzzGemmPacked(f *testing.F) {
	for _, s := range packedSeeds {
		f.Add(s)
	}
	f.Fuzz(fuzzGemmPacked)
}

// packedSeeds: m, n, k, flags (1: k += 480, 2: β from the bytes, 4: k += 160,
// 8: pack a larger NaN operand first), α, β (flag 2), the paddings of lda,
// ldb (NT), lda, ldb (TN) and ldc, then A, B (NT), A, B (TN), C, rs and cs.
var packedSeeds = [][]byte{
	{25, 65, 3, 0, 0, 0, 128, 63},
	{3, 5, 17, 2, 0, 0, 0, 64, 0, 0, 0, 63, 1, 2, 3, 4, 1},    // m·n = 15: tiny
	{4, 4, 9, 10, 0, 0, 192, 63, 0, 0, 0, 192, 0, 1, 0, 1, 2}, // m·n = 16, stale buffers
	{13, 33, 70, 3, 0, 0, 128, 191, 0, 0, 128, 63, 1, 0, 2, 0, 3, 1, 2, 3, 4, 5},
	{12, 32, 40, 12, 0, 0, 192, 63, 4, 3, 2, 1, 0},
	{5, 4, 0, 2, 0, 0, 128, 63, 0, 0, 0, 64}, // k = 0: C = β·C
	{0, 7, 5, 0, 0, 0, 128, 63},
	{1, 1, 1, 0},
	{71, 71, 71, 9, 0, 0, 32, 65, 1, 1, 1, 1, 1},
	{7, 17, 33, 5, 0, 0, 128, 63, 0, 0, 0, 0, 4, 3, 2, 1},
	{5, 7, 19, 2, 0, 0, 160, 63, 0, 0, 64, 191, 1, 2, 3, 4},
}

// packedBytes is the packed target's gemmBytes: past the end of the bytes
// its floats are full-mantissa values in (−2, 2) hashed from their index
// (the GEMM targets' quarters multiply exactly, which would hide a changed
// rounding order), so that short inputs reach every rounding.
type packedBytes struct{ gemmBytes }

func (r *packedBytes) f32() float32 {
	if len(r.b) >= 4 {
		return r.gemmBytes.f32()
	}
	r.b = nil
	r.k++
	x := uint32(r.k) * 0x9e3779b1
	x ^= x >> 15
	x *= 0x85ebca6b
	x ^= x >> 13
	return float32(int32(x)) * 0x1p-30
}

func (r *packedBytes) floats(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.f32()
	}
	return s
}

func fuzzGemmPacked(t *testing.T, data []byte) {
	r := &packedBytes{gemmBytes{byteReader{b: data}}}
	m, n, k := r.size()%72, r.size()%72, r.size()%72
	flags := r.size()
	if flags&1 != 0 {
		k += 480 // straddle the 512-deep single pass
	}
	if flags&4 != 0 {
		k += 160 // straddle the cache-derived pass depths (128–384)
	}
	stale := flags&8 != 0
	alpha := r.f32()
	beta := float32(0)
	if flags&2 != 0 {
		beta = r.f32()
	}
	ldaNT, ldbNT := max(k+r.size()%5, 1), max(k+r.size()%5, 1)
	ldaTN, ldbTN := max(m+r.size()%5, 1), max(n+r.size()%5, 1)
	ldc := max(n+r.size()%5, 1)
	span := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	aNT, bNT := r.floats(span(m, k, ldaNT)), r.floats(span(n, k, ldbNT)) // A m×k, B n×k
	aTN, bTN := r.floats(span(k, m, ldaTN)), r.floats(span(k, n, ldbTN)) // A k×m, B k×n
	c0 := r.floats(span(m, n, ldc))
	rs, cs := r.floats(m), r.floats(n)
	nan := float32(math.NaN())
	cNaN := make([]float32, len(c0)) // C whose old contents are to be ignored
	for i := range c0 {
		if i%ldc >= n {
			c0[i] = -777 // padding
			cNaN[i] = -777
		} else {
			cNaN[i] = nan
			if beta == 0 {
				c0[i] = nan
			}
		}
	}
	shape := fmt.Sprintf("m=%d n=%d k=%d lda=%d,%d ldb=%d,%d ldc=%d α=%v β=%v stale=%v",
		m, n, k, ldaNT, ldaTN, ldbNT, ldbTN, ldc, alpha, beta, stale)

	// float64 references: the NT product's sums serve GemmNTPacked (α, β)
	// and p (α = 1, β = 0)
	nt := packedSums(m, n, k,
		func(i, p int) float32 { return aNT[i*ldaNT+p] },
		func(p, j int) float32 { return bNT[j*ldbNT+p] })
	wantNT, boundNT := nt.ref(alpha, beta, c0, ldc)
	wantP, boundP := nt.ref(1, 0, cNaN, ldc)
	wantTN, boundTN := packedSums(m, n, k,
		func(i, p int) float32 { return aTN[p*ldaTN+i] },
		func(p, j int) float32 { return bTN[p*ldbTN+j] }).ref(alpha, beta, c0, ldc)
	wantS, boundS := make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			rc := math.Abs(float64(rs[i]) * float64(cs[j]))
			dot, e := wantP[i*n+j], boundP[i*n+j]
			wantS[i*n+j] = float64(rs[i]) * float64(cs[j]) * dot
			boundS[i*n+j] = rc*(e+(math.Abs(dot)+e)*0x1p-22) + (1+math.Abs(float64(rs[i])))*0x1p-149
		}
	}

	tiny := m*n <= 16
	var pa asm.PackedA
	var pb asm.PackedB
	var genNT, genTN, genP, genS []float32 // the generic level's results
	for _, l := range simd.Usable() {
		func() {
			restore, err := simd.Force(l)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			at := fmt.Sprintf("%v %s", l, shape)

			// NT: A packed, against GemmNT at this level
			if stale {
				pa.Pack(m+5, k+7, nanSlice((m+5)*(k+7)), k+7)
			}
			src := append([]float32(nil), aNT...)
			pa.Pack(m, k, src, ldaNT)
			fillNaN(src) // Pack keeps no reference to its source
			if pa.Rows() != m || pa.Cols() != k {
				t.Fatalf("PackedA %s: %d×%d, want %d×%d", at, pa.Rows(), pa.Cols(), m, k)
			}
			same := append([]float32(nil), c0...)
			asm.GemmNT(m, n, k, alpha, aNT, ldaNT, bNT, ldbNT, beta, same, ldc)
			got := append([]float32(nil), c0...)
			asm.GemmNTPacked(n, alpha, &pa, bNT, ldbNT, beta, got, ldc)
			checkPackedC(t, "GemmNTPacked", at, m, n, ldc, c0, got, sameIf(!tiny, same), genNT, wantNT, boundNT)
			if l == simd.Generic {
				genNT = got
			}

			// NT scaled: against rs·(cs·p), p the packed product with α = 1, β = 0
			p := append([]float32(nil), cNaN...)
			asm.GemmNTPacked(n, 1, &pa, bNT, ldbNT, 0, p, ldc)
			checkPackedC(t, "GemmNTPacked(α=1,β=0)", at, m, n, ldc, cNaN, p, nil, genP, wantP, boundP)
			scaled := append([]float32(nil), p...)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					scaled[i*ldc+j] = rs[i] * float32(cs[j]*p[i*ldc+j])
				}
			}
			got = append([]float32(nil), cNaN...)
			asm.GemmNTPackedScaled(n, &pa, bNT, ldbNT, rs, cs, got, ldc)
			checkPackedC(t, "GemmNTPackedScaled", at, m, n, ldc, cNaN, got, scaled, genS, wantS, boundS)
			if l == simd.Generic {
				genP, genS = p, got
			}

			// TN: B packed, against GemmTN at this level
			if stale {
				pb.Pack(k+7, n+5, nanSlice((k+7)*(n+5)), n+5)
			}
			src = append(src[:0], bTN...)
			pb.Pack(k, n, src, ldbTN)
			fillNaN(src)
			if pb.Rows() != k || pb.Cols() != n {
				t.Fatalf("PackedB %s: %d×%d, want %d×%d", at, pb.Rows(), pb.Cols(), k, n)
			}
			same = append([]float32(nil), c0...)
			asm.GemmTN(m, n, k, alpha, aTN, ldaTN, bTN, ldbTN, beta, same, ldc)
			got = append([]float32(nil), c0...)
			asm.GemmTNPacked(m, alpha, aTN, ldaTN, &pb, beta, got, ldc)
			checkPackedC(t, "GemmTNPacked", at, m, n, ldc, c0, got, sameIf(!tiny, same), genTN, wantTN, boundTN)
			if l == simd.Generic {
				genTN = got
			}
		}()
	}
}

// packedProduct holds, for each element of an m×n product op(A)·op(B) of
// depth k, the exact (float64) Σ_p a·b, Σ_p |a·b| and Σ_p (1 + |a| + |b|).
type packedProduct struct {
	m, n, k         int
	dot, abs, under []float64
}

// packedSums computes the sums of op(A)·op(B), op(A)(i, p) and op(B)(p, j)
// given.
func packedSums(m, n, k int, opA, opB func(int, int) float32) *packedProduct {
	s := &packedProduct{m: m, n: n, k: k, dot: make([]float64, m*n), abs: make([]float64, m*n), under: make([]float64, m*n)}
	at, bt := make([]float64, m*k), make([]float64, n*k) // op(A) and op(B)ᵀ, row-major
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			at[i*k+p] = float64(opA(i, p))
		}
	}
	for j := 0; j < n; j++ {
		for p := 0; p < k; p++ {
			bt[j*k+p] = float64(opB(p, j))
		}
	}
	for i := 0; i < m; i++ {
		x := at[i*k : i*k+k]
		for j := 0; j < n; j++ {
			y := bt[j*k : j*k+k]
			var dot, abs, under float64
			for p, v := range x {
				d := v * y[p]
				dot += d
				abs += math.Abs(d)
				under += 1 + math.Abs(v) + math.Abs(y[p])
			}
			s.dot[i*n+j], s.abs[i*n+j], s.under[i*n+j] = dot, abs, under
		}
	}
	return s
}

// ref is the float64 reference of C = α·op(A)·op(B) + β·C (C's old
// contents c0, stride ldc) and each element's bound, as the GEMM targets
// state it.
func (s *packedProduct) ref(alpha, beta float32, c0 []float32, ldc int) (want, bound []float64) {
	m, n := s.m, s.n
	want, bound = make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			w := float64(alpha) * s.dot[i*n+j]
			terms := math.Abs(float64(alpha)) * s.abs[i*n+j]
			if beta != 0 {
				bc := float64(beta) * float64(c0[i*ldc+j])
				w += bc
				terms += math.Abs(bc)
			}
			want[i*n+j] = w
			bound[i*n+j] = float64(s.k+9)*0x1p-23*terms + 0x1p-149*((1+math.Abs(float64(alpha)))*s.under[i*n+j]+2)
		}
	}
	return want, bound
}

// checkPackedC checks one result C (m×n, stride ldc) of entry what: the
// padding as in c0, bitwise same when same is not nil, within bound of want,
// and within twice bound of gen (the generic level's result) when gen is
// not nil.
func checkPackedC(t *testing.T, what, at string, m, n, ldc int, c0, got, same, gen []float32, want, bound []float64) {
	t.Helper()
	for i := 0; i < m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(got); j++ {
			x := got[i*ldc+j]
			if j >= n {
				if math.Float32bits(x) != math.Float32bits(c0[i*ldc+j]) {
					t.Fatalf("%s %s: wrote padding C[%d][%d] = %v", what, at, i, j, x)
				}
				continue
			}
			if same != nil && math.Float32bits(x) != math.Float32bits(same[i*ldc+j]) {
				t.Fatalf("%s %s: C[%d][%d] = %v (%#08x), want bitwise %v (%#08x)",
					what, at, i, j, x, math.Float32bits(x), same[i*ldc+j], math.Float32bits(same[i*ldc+j]))
			}
			w, e := want[i*n+j], bound[i*n+j]
			if !within(float64(x), w, e) {
				t.Fatalf("%s %s: C[%d][%d] = %v, want %v ± %v", what, at, i, j, x, w, e)
			}
			if gen != nil && !within(float64(x), float64(gen[i*ldc+j]), 2*e) {
				t.Fatalf("%s %s: C[%d][%d] = %v, generic %v ± %v", what, at, i, j, x, gen[i*ldc+j], 2*e)
			}
		}
	}
}

func sameIf(ok bool, s []float32) []float32 {
	if !ok {
		return nil
	}
	return s
}

func nanSlice(n int) []float32 {
	s := make([]float32, n)
	fillNaN(s)
	return s
}

func fillNaN(s []float32) {
	for i := range s {
		s[i] = float32(math.NaN())
	}
}
