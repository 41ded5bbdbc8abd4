package asm

import (
	"math"
	"unsafe"

	"github.com/marginloss/marginloss/internal/simd"
)

// The bfloat16 GEMMs: the products of the float32 ones with both operands
// rounded to bfloat16 first, accumulated in float32. The rounding happens
// in the GEMM driver's packing routines, so no bf16 copy of an operand
// outlives a panel; the driver runs either
//
//   - gemmBF16Pair: the packs hold k-pairs of bf16 values in one 32-bit
//     word (the "VNNI" layout: word q of row i is
//     bf16(x[i][2q]) | bf16(x[i][2q+1])<<16) and a bf16 dot-product kernel
//     (VDPBF16PS) consumes them, or
//   - gemmBF16Round: the packs hold the rounded values as float32 (exactly
//     representable), so the level's float32 kernel gives the same
//     numerics on CPUs without bf16 instructions.
//
// Every product of two bf16 values is exact in float32, so both add the
// same exact terms; they differ only in the order of the float32 sums (and
// the bf16 instructions' flush of subnormal sums to zero). The bound is the
// float32 GEMM's, with the operands rounded: each element is within
// (k+9)·2⁻²³·Σ|terms| of α·Σ_p bf16(a)·bf16(b) + β·c, plus the absolute
// rounding of terms below the float32 normal range (2⁻¹²⁶ per addition).

// gemmPrec is how a driver treats its operands.
type gemmPrec uint8

const (
	gemmF32       gemmPrec = iota // exact float32 operands
	gemmBF16Round                 // rounded to bf16, float32 layout
	gemmBF16Pair                  // rounded to bf16, paired along k
	// gemmBF16Tile: rounded to bf16 and paired along k, padded with zero
	// pairs to a multiple of gemmTilePairs, Ã's slivers row by row (row
	// i's pairs contiguous) for a tile kernel (AMX's TDPBF16PS) that reads
	// A as rows of k-pairs and B as k-pair rows of NR words.
	gemmBF16Tile
)

// gemmTilePairs is the depth of one tile step of gemmBF16Tile, in k-pairs:
// a 64-byte AMX tile row of bf16 values.
const gemmTilePairs = 16

// gemmCvtFunc rounds n floats at src to bf16 words at dst, k order kept:
// dst[q] = pairWord(src[2q], src[2q+1]) for q < n/2 (gemmCvtGeneric).
// n is a multiple of 32.
type gemmCvtFunc func(dst, src *float32, n int)

// gemmCvtGeneric is the Go twin of a level's gemmCvtFunc.
func gemmCvtGeneric(dst, src *float32, n int) {
	if n == 0 {
		return
	}
	d, s := unsafe.Slice(dst, n/2), unsafe.Slice(src, n)
	for q := range d {
		d[q] = pairWord(s[2*q], s[2*q+1])
	}
}

// cvtRow fills d (⌈len(s)/2⌉ words) with the pair words of the floats s in
// order, the last pair's high half 0 when len(s) is odd: the level's
// conversion for whole multiples of 32, Go for the rest.
func (g *gemmArch) cvtRow(d, s []float32) {
	n := len(s) &^ 31
	if n > 0 {
		_ = d[n/2-1]
		g.cvt(&d[0], &s[0], n)
	}
	for q := n / 2; q < len(d); q++ {
		hi := float32(0)
		if 2*q+1 < len(s) {
			hi = s[2*q+1]
		}
		d[q] = pairWord(s[2*q], hi)
	}
}

// gemmPairFunc converts kc2 pairs of float32 rows into bf16 pair words:
//
//	for q := 0; q < kc2; q++ {
//		for x := 0; x < w; x++ {
//			dst[q*ldd+x] = bf16(src[2q*lds+x]) | bf16(src[(2q+1)*lds+x])<<16
//		}
//	}
//
// (gemmPairGeneric; dst holds the words' bits as float32).
type gemmPairFunc func(dst *float32, ldd int, src *float32, lds int, kc2, w int)

// BF16Bits is the bfloat16 value nearest to x, as the AVX512_BF16
// conversions (VCVTNEPS2BF16) compute it: round to nearest, ties to even;
// subnormal inputs become zero of the same sign; infinities stay; a NaN
// stays a NaN (quiet, its top mantissa bits kept).
func BF16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	switch {
	case b&0x7f800000 == 0: // zero or subnormal
		return uint16(b>>16) & 0x8000
	case b&0x7fffffff > 0x7f800000: // NaN
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// RoundBF16 is x rounded to bfloat16 (BF16Bits), as a float32: the value
// every operand of the bfloat16 GEMMs takes.
func RoundBF16(x float32) float32 { return math.Float32frombits(uint32(BF16Bits(x)) << 16) }

// roundBF16Generic rounds every element of x to bfloat16 in place: the Go
// twin of a level's rounding of its packs (gemmArch.round).
func roundBF16Generic(x []float32) {
	for i, v := range x {
		x[i] = RoundBF16(v)
	}
}

// pairWord is the bf16 pair word of lo (the even k) and hi (the odd k).
func pairWord(lo, hi float32) float32 {
	return math.Float32frombits(uint32(BF16Bits(lo)) | uint32(BF16Bits(hi))<<16)
}

// gemmPairGeneric is the Go twin of the level's pair conversion
// (gemmPairFunc's loop).
func gemmPairGeneric(dst *float32, ldd int, src *float32, lds int, kc2, w int) {
	if kc2 == 0 || w == 0 {
		return
	}
	d := unsafe.Slice(dst, (kc2-1)*ldd+w)
	s := unsafe.Slice(src, (2*kc2-1)*lds+w)
	for q := 0; q < kc2; q++ {
		r0, r1 := s[2*q*lds:2*q*lds+w], s[(2*q+1)*lds:(2*q+1)*lds+w]
		dq := d[q*ldd : q*ldd+w]
		for x := range dq {
			dq[x] = pairWord(r0[x], r1[x])
		}
	}
}

// steps is the kernel's depth for kc values of k: kc, its ⌈kc/2⌉ pairs,
// or for gemmBF16Tile those pairs rounded up to whole tile steps.
func (g *gemmArch) steps(kc int) int {
	switch g.prec {
	case gemmBF16Pair:
		return (kc + 1) / 2
	case gemmBF16Tile:
		return roundUp((kc+1)/2, gemmTilePairs)
	}
	return kc
}

// pairRows fills kc rows' worth of pair words (⌈kc/2⌉ rows of w words at
// row stride ldd) from the kc float32 rows of w values at src (row stride
// lds): the level's pair conversion for the full pairs, Go for the odd
// last row (its high half 0).
func (g *gemmArch) pairRows(dst []float32, ldd int, src []float32, lds, kc, w int) {
	kc2 := kc / 2
	if kc2 > 0 && w > 0 {
		_ = dst[(kc2-1)*ldd+w-1]
		_ = src[(2*kc2-1)*lds+w-1]
		g.pair(&dst[0], ldd, &src[0], lds, kc2, w)
	}
	if kc%2 == 1 {
		d, s := dst[kc2*ldd:kc2*ldd+w], src[(kc-1)*lds:(kc-1)*lds+w]
		for x := range d {
			d[x] = pairWord(s[x], 0)
		}
	}
}

// packPairA is packA for gemmBF16Pair: dst[s·ks·MR + q·MR + i] =
// pair(op(A)[i0+s·MR+i][p0+2q], op(A)[i0+s·MR+i][p0+2q+1]), ks = ⌈kc/2⌉,
// the pair's high half 0 past kc. For NT and NN (A's rows along k) the
// sliver is first transposed to float32 in *cvt.
func (g *gemmArch) packPairA(op gemmOp, dst, a []float32, lda, i0, mcur, p0, kc int, cvt *[]float32) {
	mr, ks := g.mr, g.steps(kc)
	for ir := 0; ir < mcur; ir += mr {
		rows := min(mr, mcur-ir)
		d := dst[ir*ks : ir*ks+ks*mr]
		if op == gemmOpTN { // op(A)[i][p] = A[p][i]: rows of A are k
			g.pairRows(d, mr, a[p0*lda+i0+ir:], lda, kc, rows)
			continue
		}
		t := aligned64(cvt, kc*mr)
		g.packTrans(t, mr, a[(i0+ir)*lda+p0:], lda, rows, kc)
		g.pairRows(d, mr, t, mr, kc, rows)
	}
}

// packTileA is packA for gemmBF16Tile: sliver s holds its MR rows one after
// another, dst[s·ks·MR + i·ks + q] = pair(op(A)[i0+s·MR+i][p0+2q],
// op(A)[i0+s·MR+i][p0+2q+1]), ks = steps(kc), the pairs past kc zero. For
// NT and NN (A's rows along k) each row converts in place; for TN the
// sliver is first paired along k (q-major) in *cvt and transposed.
func (g *gemmArch) packTileA(op gemmOp, dst, a []float32, lda, i0, mcur, p0, kc int, cvt *[]float32) {
	mr, ks, nq := g.mr, g.steps(kc), (kc+1)/2
	for ir := 0; ir < mcur; ir += mr {
		rows := min(mr, mcur-ir)
		d := dst[ir*ks : ir*ks+ks*mr]
		if op == gemmOpTN { // op(A)[i][p] = A[p][i]: rows of A are k
			t := aligned64(cvt, nq*mr)
			g.pairRows(t, mr, a[p0*lda+i0+ir:], lda, kc, rows)
			g.packTrans(d, ks, t, mr, nq, rows)
		} else {
			for i := 0; i < rows; i++ {
				o := (i0+ir+i)*lda + p0
				g.cvtRow(d[i*ks:i*ks+nq], a[o:o+kc])
			}
		}
		for i := 0; i < rows; i++ {
			clear(d[i*ks+nq : (i+1)*ks])
		}
	}
}

// packTileB is packB for gemmBF16Tile: packPairB's panel (dst[q·NR + j]
// the pair word of column j, k-pair q), then zero pairs to a whole tile
// step. For NT (B's rows along k) each of the w rows converts to pair
// words in *cvt in one pass over contiguous floats (cvtRow) and the words
// are transposed into the panel: the same words as packPairB's, half the
// data its float transpose moves.
func (g *gemmArch) packTileB(op gemmOp, dst, b []float32, ldb, j0, w, p0, kc int, cvt *[]float32) {
	nq := (kc + 1) / 2
	if op == gemmOpNT {
		t := aligned64(cvt, w*nq)
		for j := 0; j < w; j++ {
			o := (j0+j)*ldb + p0
			g.cvtRow(t[j*nq:(j+1)*nq], b[o:o+kc])
		}
		g.packTrans(dst, g.nr, t, nq, w, nq)
	} else {
		g.pairRows(dst, g.nr, b[p0*ldb+j0:], ldb, kc, w)
	}
	clear(dst[nq*g.nr : g.steps(kc)*g.nr])
}

// packPairB is packB for gemmBF16Pair: dst[q·NR + j] =
// pair(op(B)[p0+2q][j0+j], op(B)[p0+2q+1][j0+j]) for j < w. For NT (B's
// rows along k) the panel is first transposed to float32 in *cvt.
func (g *gemmArch) packPairB(op gemmOp, dst, b []float32, ldb, j0, w, p0, kc int, cvt *[]float32) {
	if op == gemmOpNT {
		t := aligned64(cvt, kc*g.nr)
		g.packTrans(t, g.nr, b[j0*ldb+p0:], ldb, w, kc)
		g.pairRows(dst, g.nr, t, g.nr, kc, w)
		return
	}
	g.pairRows(dst, g.nr, b[p0*ldb+j0:], ldb, kc, w)
}

// gemmKernelBF16Generic returns the Go twin of a bf16 pair micro-kernel
// (VDPBF16PS): a and b hold kc pair words per step, and each lane adds
// the odd pair's product, then the even one's, in float32:
//
//	for i := 0; i < mr; i++ {
//		for j := 0; j < NR; j++ {
//			var s float32
//			for q := 0; q < kc; q++ {
//				s += hi(a[q*MR+i]) * hi(b[q*NR+j])
//				s += lo(a[q*MR+i]) * lo(b[q*NR+j])
//			}
//			c[i*ldc+j] = alpha*s (+ beta*c[i*ldc+j] when beta ≠ 0)
//		}
//	}
//
// lo and hi being the bf16 halves of a word as float32. The products are
// exact; VDPBF16PS rounds their sum with the accumulator its own way
// (Intel, AMD and Arm's BFDOT differ), and treats subnormal inputs and
// sums as zero, which the twin does not: the two agree within the GEMM
// bound, not bitwise.
func gemmKernelBF16Generic(mrMax, nr int) gemmKernelFunc {
	return bf16TwinKernel(mrMax, nr, func(i, q, _ int) int { return q*mrMax + i })
}

// bf16TwinKernel is the loop of the bf16 kernels' Go twins, word (i, q) of
// the A sliver at at(i, q, kc).
func bf16TwinKernel(mrMax, nr int, at func(i, q, kc int) int) gemmKernelFunc {
	return func(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32) {
		as := unsafe.Slice((*uint32)(unsafe.Pointer(a)), kc*mrMax)
		bs := unsafe.Slice((*uint32)(unsafe.Pointer(b)), kc*nr)
		cs := unsafe.Slice(c, (mr-1)*ldc+nr)
		for i := 0; i < mr; i++ {
			ci := cs[i*ldc : i*ldc+nr]
			for j := range ci {
				var s float32
				for q := 0; q < kc; q++ {
					x, y := as[at(i, q, kc)], bs[q*nr+j]
					s += math.Float32frombits(x&0xffff0000) * math.Float32frombits(y&0xffff0000)
					s += math.Float32frombits(x<<16) * math.Float32frombits(y<<16)
				}
				if beta == 0 {
					ci[j] = alpha * s
				} else {
					ci[j] = alpha*s + beta*ci[j]
				}
			}
		}
	}
}

// gemmKernelBF16TileGeneric returns the Go twin of a bf16 tile
// micro-kernel (AMX's TDPBF16PS) for gemmBF16Tile's packs: a holds the
// sliver's mrMax rows of kc pair words each, b kc rows of nr pair words,
// and each element sums, per word, the odd pair's product and then the
// even one's in float32 (as gemmKernelBF16Generic; the hardware's own
// order and its flush of subnormals differ, so the two agree within the
// GEMM bound, not bitwise):
//
//	c[i*ldc+j] = alpha*Σ_q (hi(a[i*kc+q])·hi(b[q*nr+j]) + lo(…)·lo(…)) (+ beta*c[i*ldc+j])
func gemmKernelBF16TileGeneric(mrMax, nr int) gemmKernelFunc {
	return bf16TwinKernel(mrMax, nr, func(i, q, kc int) int { return i*kc + q })
}

// bf16Drivers holds the driver of the bfloat16 GEMMs for each level:
// generic's here, the others from the arch files' init.
var bf16Drivers = map[simd.Level]*gemmArch{
	simd.Generic: newGemmArch(gemmArch{
		mr: 4, nr: 16, kc: 256, kcDeep: 256, mc: 256, nc: 1024,
		kernel: gemmKernelGo4x16, prec: gemmBF16Round,
	}),
}

// gemmKernelGo4x16 is gemmKernelGeneric(4, 16) with the tile held in
// locals, each row's 16 sums updated per step (the same sums in the same
// order: bitwise the same results), for the generic level's bf16 driver.
func gemmKernelGo4x16(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32) {
	const mrMax, nr = 4, 16
	as := unsafe.Slice(a, kc*mrMax)
	bs := unsafe.Slice(b, kc*nr)
	var t [mrMax][nr]float32
	for p := 0; p < kc; p++ {
		bp := (*[nr]float32)(bs[p*nr : p*nr+nr])
		ap := (*[mrMax]float32)(as[p*mrMax : p*mrMax+mrMax])
		for i := 0; i < mr; i++ {
			x := ap[i]
			ti := &t[i]
			for j := range ti {
				ti[j] += x * bp[j]
			}
		}
	}
	cs := unsafe.Slice(c, (mr-1)*ldc+nr)
	for i := 0; i < mr; i++ {
		ci := cs[i*ldc : i*ldc+nr]
		for j, v := range t[i] {
			if beta == 0 {
				ci[j] = alpha * v
			} else {
				ci[j] = alpha*v + beta*ci[j]
			}
		}
	}
}

// bf16Alternates holds, by name, the bf16 drivers an arch file builds but
// does not dispatch to (the float32-kernel fallback of a level whose own
// bf16 driver uses bf16 instructions), so that tests reach them.
var bf16Alternates = map[string]*gemmArch{}

// bf16Native is set by an arch file whose bf16 driver at its top level
// runs bf16 dot-product instructions on this CPU (level: the one it
// needs).
var bf16Native = struct {
	ok    bool
	level simd.Level
}{}

// BF16Native reports whether the bfloat16 GEMMs run bf16 dot-product
// instructions (AMX's TDPBF16PS, AVX512_BF16's VDPBF16PS, arm64's BFDOT) at the active level
// on this CPU and build. When they do not (no such instructions, or, by
// simd.BF16DotFast's fixed rule, none faster than the float32 FMAs), they
// give the same numerics (operands rounded to bf16, float32 sums) on the
// float32 kernels.
func BF16Native() bool {
	return bf16Native.ok && simd.Active() == bf16Native.level
}

// bf16Driver is the bfloat16 driver of the active level.
func bf16Driver() *gemmArch {
	if g := bf16Drivers[simd.Active()]; g != nil {
		return g
	}
	return bf16Drivers[simd.Generic]
}

// withPrec returns a copy of g with precision p (and, for gemmBF16Pair and
// gemmBF16Tile, kernel k and conversion pair); kc and kcDeep are doubled
// for pairs, so that a panel's bytes stay what the float32 blocking chose.
func (g gemmArch) withPrec(p gemmPrec, k gemmKernelFunc, pair gemmPairFunc) *gemmArch {
	g.prec = p
	if p == gemmBF16Pair || p == gemmBF16Tile {
		g.kernel, g.pair = k, pair
		g.kc, g.kcDeep = 2*g.kc, 2*g.kcDeep
	}
	return newGemmArch(g)
}

// GemmNTBF16 is GemmNT with a and b rounded to bfloat16 (RoundBF16)
// before they are multiplied, the products summed in float32:
//
//	c[i*ldc+j] = alpha*Σ_p RoundBF16(a[i*lda+p])·RoundBF16(b[j*ldb+p]) + beta*c[i*ldc+j]
//
// α, β and C stay float32; β = 0 ignores C's old contents. Each element is
// within (k+9)·2⁻²³·Σ|terms| of the exact value of that expression, the
// terms being the k products α·bf16(a)·bf16(b) and β·c, plus 2⁻¹²⁶ per
// term for sums below float32's normal range. It panics as GemmNT does.
func GemmNTBF16(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmNTBF16", m, n, k, "mk", a, lda, "nk", b, ldb, c, ldc)
	bf16Driver().gemm(gemmOpNT, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmNNBF16 is GemmNN with a and b rounded to bfloat16, as GemmNTBF16:
//
//	c[i*ldc+j] = alpha*Σ_p RoundBF16(a[i*lda+p])·RoundBF16(b[p*ldb+j]) + beta*c[i*ldc+j]
func GemmNNBF16(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmNNBF16", m, n, k, "mk", a, lda, "kn", b, ldb, c, ldc)
	bf16Driver().gemm(gemmOpNN, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmTNBF16 is GemmTN with a and b rounded to bfloat16, as GemmNTBF16:
//
//	c[i*ldc+j] = alpha*Σ_p RoundBF16(a[p*lda+i])·RoundBF16(b[p*ldb+j]) + beta*c[i*ldc+j]
func GemmTNBF16(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmTNBF16", m, n, k, "km", a, lda, "kn", b, ldb, c, ldc)
	bf16Driver().gemm(gemmOpTN, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// PackBF16 is Pack for the bfloat16 GEMMs: A is stored rounded to
// bfloat16 for the active level's bf16 driver, and GemmNTPacked and
// GemmNTPackedScaled with this PackedA then compute GemmNTBF16's product
// (b rounded to bf16 as its panels are packed).
func (p *PackedA) PackBF16(m, k int, a []float32, lda int) {
	if m < 0 || k < 0 {
		panicf("PackedA.PackBF16: negative dimension: m = %d, k = %d", m, k)
	}
	checkOperand("PackedA.PackBF16", "a", "lda", "mk", m, k, a, lda)
	p.m, p.k = m, k
	p.arch = bf16Driver()
	p.data = p.arch.packAllA(&p.buf, gemmOpNT, m, k, a, lda)
}

// PackBF16 is Pack for the bfloat16 GEMMs: GemmTNPacked with this PackedB
// computes GemmTNBF16's product.
func (p *PackedB) PackBF16(k, n int, b []float32, ldb int) {
	if k < 0 || n < 0 {
		panicf("PackedB.PackBF16: negative dimension: k = %d, n = %d", k, n)
	}
	checkOperand("PackedB.PackBF16", "b", "ldb", "kn", k, n, b, ldb)
	p.k, p.n = k, n
	p.arch = bf16Driver()
	p.data = p.arch.packAllB(&p.buf, gemmOpTN, k, n, b, ldb)
}

// bf16ForceDriver is the "BF16ForceDriver" hook (hooks.go): the
// alternate named name becomes the AVX-512 level's bf16 driver (BF16Native
// follows) until restore. Not safe while bf16 GEMMs run.
func bf16ForceDriver(name string) (restore func(), ok bool) {
	g := bf16Alternates[name]
	if g == nil {
		return nil, false
	}
	old, oldNative := bf16Drivers[simd.AVX512], bf16Native
	bf16Drivers[simd.AVX512] = g
	bf16Native.ok, bf16Native.level = g.prec == gemmBF16Pair || g.prec == gemmBF16Tile, simd.AVX512
	return func() { bf16Drivers[simd.AVX512], bf16Native = old, oldNative }, true
}
