package fuzz

import (
	"fmt"
	"math"
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// FuzzGemmBF16 drives asm's bfloat16 GEMMs (GemmNTBF16, GemmNNBF16,
// GemmTNBF16, and PackBF16 with GemmNTPacked, GemmNTPackedScaled and
// GemmTNPacked) through their public API at each usable level, with the
// shapes, α, β and float32 bit patterns read from the bytes as
// FuzzGemmPacked reads them (finite, at most 2^20 in magnitude, subnormals
// included). At every level:
//
//   - each product is within the GEMM bound of the float64 product of the
//     operands rounded by asm.RoundBF16: (k+9)·2⁻²³·Σ|terms| plus
//     FuzzGemmPacked's underflow term and 2⁻¹²⁶·(2k+2) for the bf16
//     instructions' flush of subnormal sums;
//   - the packed entries give bitwise the unpacked ones at that level, and
//     the scaled one rs[i]·(cs[j]·p);
//   - every result is within twice its bound of the generic level's.
func FuzzGemmBF16(f *testing.F) {
	for _, s := range packedSeeds {
		f.Add(s)
	}
	f.Fuzz(fuzzGemmBF16)
}

func fuzzGemmBF16(t *testing.T, data []byte) {
	r := &packedBytes{gemmBytes{byteReader{b: data}}}
	m, n, k := r.size()%72, r.size()%72, r.size()%72
	flags := r.size()
	if flags&1 != 0 {
		k += 480
	}
	if flags&4 != 0 {
		k += 161 // odd: a last pair with one value
	}
	alpha := r.f32()
	beta := float32(0)
	if flags&2 != 0 {
		beta = r.f32()
	}
	span := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	ldk, ldm, ldn := max(k+r.size()%5, 1), max(m+r.size()%5, 1), max(n+r.size()%5, 1)
	ldc := max(n+r.size()%5, 1)
	aMK, bNK := r.floats(span(m, k, ldk)), r.floats(span(n, k, ldk)) // NT, and NN's A
	aKM, bKN := r.floats(span(k, m, ldm)), r.floats(span(k, n, ldn)) // TN, and NN's B
	c0 := r.floats(span(m, n, ldc))
	rs, cs := r.floats(m), r.floats(n)
	cNaN := make([]float32, len(c0))
	for i := range c0 {
		if i%ldc >= n {
			c0[i], cNaN[i] = -777, -777
		} else {
			cNaN[i] = float32(math.NaN())
			if beta == 0 {
				c0[i] = cNaN[i]
			}
		}
	}
	rd := asm.RoundBF16
	sums := map[string]*packedProduct{
		"NT": packedSums(m, n, k, func(i, p int) float32 { return rd(aMK[i*ldk+p]) }, func(p, j int) float32 { return rd(bNK[j*ldk+p]) }),
		"NN": packedSums(m, n, k, func(i, p int) float32 { return rd(aMK[i*ldk+p]) }, func(p, j int) float32 { return rd(bKN[p*ldn+j]) }),
		"TN": packedSums(m, n, k, func(i, p int) float32 { return rd(aKM[p*ldm+i]) }, func(p, j int) float32 { return rd(bKN[p*ldn+j]) }),
	}
	ftz := 0x1p-126 * float64(2*k+2)
	ref := func(op string, al, be float32, c []float32) ([]float64, []float64) {
		w, b := sums[op].ref(al, be, c, ldc)
		for i := range b {
			b[i] += (1 + math.Abs(float64(al))) * ftz
		}
		return w, b
	}
	shape := fmt.Sprintf("m=%d n=%d k=%d ldk=%d ldm=%d ldn=%d ldc=%d α=%v β=%v", m, n, k, ldk, ldm, ldn, ldc, alpha, beta)
	gen := map[string][]float32{}
	var pa asm.PackedA
	var pb asm.PackedB
	for _, l := range simd.Usable() {
		func() {
			restore, err := simd.Force(l)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			at := fmt.Sprintf("%v %s", l, shape)
			run := func(name, op string, al, be float32, c []float32, f func(c []float32), same []float32) []float32 {
				got := append([]float32(nil), c...)
				f(got)
				want, bound := ref(op, al, be, c)
				checkPackedC(t, name, at, m, n, ldc, c, got, same, gen[name], want, bound)
				if l == simd.Generic {
					gen[name] = got
				}
				return got
			}
			nt := run("GemmNTBF16", "NT", alpha, beta, c0, func(c []float32) {
				asm.GemmNTBF16(m, n, k, alpha, aMK, ldk, bNK, ldk, beta, c, ldc)
			}, nil)
			run("GemmNNBF16", "NN", alpha, beta, c0, func(c []float32) {
				asm.GemmNNBF16(m, n, k, alpha, aMK, ldk, bKN, ldn, beta, c, ldc)
			}, nil)
			tn := run("GemmTNBF16", "TN", alpha, beta, c0, func(c []float32) {
				asm.GemmTNBF16(m, n, k, alpha, aKM, ldm, bKN, ldn, beta, c, ldc)
			}, nil)
			src := append([]float32(nil), aMK...)
			pa.PackBF16(m, k, src, ldk)
			fillNaN(src)
			run("GemmNTPacked(bf16)", "NT", alpha, beta, c0, func(c []float32) {
				asm.GemmNTPacked(n, alpha, &pa, bNK, ldk, beta, c, ldc)
			}, nt)
			p := run("GemmNTPacked(bf16,α=1,β=0)", "NT", 1, 0, cNaN, func(c []float32) {
				asm.GemmNTPacked(n, 1, &pa, bNK, ldk, 0, c, ldc)
			}, nil)
			got := append([]float32(nil), cNaN...)
			asm.GemmNTPackedScaled(n, &pa, bNK, ldk, rs, cs, got, ldc)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					if w := rs[i] * (cs[j] * p[i*ldc+j]); math.Float32bits(w) != math.Float32bits(got[i*ldc+j]) {
						t.Fatalf("GemmNTPackedScaled(bf16) %s: C[%d][%d] = %v, want rs·(cs·p) = %v", at, i, j, got[i*ldc+j], w)
					}
				}
			}
			src = append(src[:0], bKN...)
			pb.PackBF16(k, n, src, ldn)
			fillNaN(src)
			run("GemmTNPacked(bf16)", "TN", alpha, beta, c0, func(c []float32) {
				asm.GemmTNPacked(m, alpha, aKM, ldm, &pb, beta, c, ldc)
			}, tn)
		}()
	}
}
