package asm

import "github.com/marginloss/marginloss/internal/simd"

// A layer that multiplies one operand by many others (the loss heads: x̂
// against every class tile, in the forward pass and again for dŴ) packs it
// once into the micro-kernel's layout instead of once per call.

// PackedA is the left operand A (m×k) of GemmNTPacked, packed once for the
// kernel level active when Pack ran and reused by any number of calls. Its
// zero value is empty; Pack grows its buffer, so repacking the same or a
// smaller shape does not allocate. It holds no reference to the source.
// Calls may share one PackedA concurrently once Pack has returned.
type PackedA struct {
	m, k int
	arch *gemmArch // nil: the generic level (data is A row-major)
	data []float32
	buf  []float32
}

// Pack stores A (m×k, row-major with row stride lda) for the active level.
// It panics, naming the sizes, when m or k is negative, lda < max(1, k) or
// a is too short.
func (p *PackedA) Pack(m, k int, a []float32, lda int) {
	if m < 0 || k < 0 {
		panicf("PackedA.Pack: negative dimension: m = %d, k = %d", m, k)
	}
	checkOperand("PackedA.Pack", "a", "lda", "mk", m, k, a, lda)
	p.m, p.k = m, k
	p.arch = gemmDrivers[simd.Active()]
	if p.arch == nil {
		p.data = copyRows(&p.buf, m, k, a, lda)
		return
	}
	p.data = p.arch.packAllA(&p.buf, gemmOpNT, m, k, a, lda)
}

// Rows is the packed A's m.
func (p *PackedA) Rows() int { return p.m }

// Cols is the packed A's k.
func (p *PackedA) Cols() int { return p.k }

// PackedB is the right operand B (k×n, not transposed) of GemmTNPacked,
// packed once like PackedA.
type PackedB struct {
	k, n int
	arch *gemmArch
	data []float32
	buf  []float32
}

// Pack stores B (k×n, row-major with row stride ldb) for the active level.
// It panics, naming the sizes, when k or n is negative, ldb < max(1, n) or
// b is too short.
func (p *PackedB) Pack(k, n int, b []float32, ldb int) {
	if k < 0 || n < 0 {
		panicf("PackedB.Pack: negative dimension: k = %d, n = %d", k, n)
	}
	checkOperand("PackedB.Pack", "b", "ldb", "kn", k, n, b, ldb)
	p.k, p.n = k, n
	p.arch = gemmDrivers[simd.Active()]
	if p.arch == nil {
		p.data = copyRows(&p.buf, k, n, b, ldb)
		return
	}
	p.data = p.arch.packAllB(&p.buf, gemmOpTN, k, n, b, ldb)
}

// Rows is the packed B's k.
func (p *PackedB) Rows() int { return p.k }

// Cols is the packed B's n.
func (p *PackedB) Cols() int { return p.n }

// GemmNTPacked computes C = α·A·Bᵀ + β·C as GemmNT does, with A (m×k) from
// pa, at the level pa was packed for. It gives bitwise the result of GemmNT
// at that level when m·n > 16 (GemmNT hands smaller products to the
// generic level; GemmNTPacked never does, so there they may differ in the
// last bits). It panics when pa is nil, or when b or c is too short or
// strided too narrowly for n and pa's shape.
func GemmNTPacked(n int, alpha float32, pa *PackedA, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if pa == nil {
		panicf("GemmNTPacked: nil PackedA")
	}
	m, k := pa.m, pa.k
	checkGemm("GemmNTPacked", m, n, k, "", nil, 0, "nk", b, ldb, c, ldc)
	if pa.arch == nil {
		gemmNTGeneric(m, n, k, alpha, pa.data, max(k, 1), b, ldb, beta, c, ldc)
		return
	}
	pa.arch.gemmPre(gemmOpNT, m, n, k, alpha, nil, 0, b, ldb, beta, c, ldc, pa.data, nil, nil)
}

// GemmNTPackedScaled computes C = diag(rs)·(A·Bᵀ)·diag(cs), that is
//
//	c[i*ldc+j] = rs[i] * (cs[j] * Σ_p a[i][p]·b[j*ldb+p])
//
// with A (m×k) from pa, the row scales rs (m values) and column scales cs
// (n values) applied as each tile of C leaves the micro-kernel, with no
// other pass over C (a fused epilogue). C's old contents are ignored. At
// pa's level it gives bitwise rs[i]·(cs[j]·p_ij) where p is GemmNTPacked's
// product with α = 1, β = 0. It panics when pa is nil, or when b, c, rs or
// cs is too short for n and pa's shape.
func GemmNTPackedScaled(n int, pa *PackedA, b []float32, ldb int, rs, cs []float32, c []float32, ldc int) {
	if pa == nil {
		panicf("GemmNTPackedScaled: nil PackedA")
	}
	m, k := pa.m, pa.k
	checkGemm("GemmNTPackedScaled", m, n, k, "", nil, 0, "nk", b, ldb, c, ldc)
	if len(rs) < m {
		panicf("GemmNTPackedScaled: len(rs) = %d, want ≥ m = %d", len(rs), m)
	}
	if len(cs) < n {
		panicf("GemmNTPackedScaled: len(cs) = %d, want ≥ n = %d", len(cs), n)
	}
	if m == 0 || n == 0 {
		return
	}
	if pa.arch == nil || k == 0 {
		if pa.arch == nil {
			gemmNTGeneric(m, n, k, 1, pa.data, max(k, 1), b, ldb, 0, c, ldc)
		} else {
			scaleC(m, n, 0, c, ldc)
		}
		scaleRows(m, n, c, ldc, c, ldc, rs, cs, 0) // in place, element by element
		return
	}
	pa.arch.gemmPre(gemmOpNT, m, n, k, 1, nil, 0, b, ldb, 0, c, ldc, pa.data, nil, &gemmEpilogue{rs: rs, cs: cs})
}

// GemmTNPacked computes C = α·Aᵀ·B + β·C as GemmTN does, with B (k×n) from
// pb, at the level pb was packed for: bitwise GemmTN at that level when
// m·n > 16, as for GemmNTPacked. It panics when pb is nil, or when a or c is
// too short or strided too narrowly for m and pb's shape.
func GemmTNPacked(m int, alpha float32, a []float32, lda int, pb *PackedB, beta float32, c []float32, ldc int) {
	if pb == nil {
		panicf("GemmTNPacked: nil PackedB")
	}
	k, n := pb.k, pb.n
	checkGemm("GemmTNPacked", m, n, k, "km", a, lda, "", nil, 0, c, ldc)
	if pb.arch == nil {
		gemmTNGeneric(m, n, k, alpha, a, lda, pb.data, max(n, 1), beta, c, ldc)
		return
	}
	pb.arch.gemmPre(gemmOpTN, m, n, k, alpha, a, lda, nil, 0, beta, c, ldc, nil, pb.data, nil)
}

// packAllA packs op(A) (m×k) for every pass over k: pass p (depth kcur,
// starting at p0) at offset p0·roundUp(m, MR), holding the slivers of all
// rows in packA's layout (row block ic at ic·kcur within the pass).
func (g *gemmArch) packAllA(buf *[]float32, op gemmOp, m, k int, a []float32, lda int) []float32 {
	mp := roundUp(m, g.mr)
	dst := aligned64(buf, mp*g.steps(k))
	if m == 0 || k == 0 {
		return dst
	}
	s := getGemmScratch()
	kc := g.passDepth(k)
	for pc := 0; pc < k; pc += kc {
		kcur := min(kc, k-pc)
		o, ks := g.steps(pc)*mp, g.steps(kcur)
		g.packA(op, dst[o:o+mp*ks], a, lda, 0, m, pc, kcur, &s.cvt)
	}
	putGemmScratch(s)
	return dst
}

// packAllB packs op(B) (k×n) for every pass over k: pass p (depth kcur,
// starting at p0) at offset p0·roundUp(n, NR), panel j (columns j·NR…) at
// j·NR·kcur within it. Columns past n in the last panel are zero.
func (g *gemmArch) packAllB(buf *[]float32, op gemmOp, k, n int, b []float32, ldb int) []float32 {
	np := roundUp(n, g.nr)
	dst := aligned64(buf, np*g.steps(k))
	if n == 0 || k == 0 {
		return dst
	}
	s := getGemmScratch()
	kc := g.passDepth(k)
	for pc := 0; pc < k; pc += kc {
		kcur := min(kc, k-pc)
		ks := g.steps(kcur)
		for j := 0; j < n; j += g.nr {
			o := g.steps(pc)*np + j*ks
			w := min(g.nr, n-j)
			if w < g.nr {
				clear(dst[o : o+ks*g.nr])
			}
			g.packB(op, dst[o:o+ks*g.nr], b, ldb, j, w, pc, kcur, &s.cvt)
		}
	}
	putGemmScratch(s)
	return dst
}

// copyRows is the generic level's "packing": the rows×cols matrix src (row
// stride ld) copied densely (row stride cols) into *buf.
func copyRows(buf *[]float32, rows, cols int, src []float32, ld int) []float32 {
	dst := aligned64(buf, rows*cols)
	for i := 0; i < rows && cols > 0; i++ {
		copy(dst[i*cols:(i+1)*cols], src[i*ld:i*ld+cols])
	}
	return dst
}
