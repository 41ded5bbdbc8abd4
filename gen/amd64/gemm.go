package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["gemm"] = gemm }

// gemmISA is one level's micro-kernel shape. The Go driver in asm repeats
// mr and nr (gemmAVX2MR, …); its tests cover every mr in 1..2·MR+1, so a
// mismatch cannot pass them. The bodies use physical registers (isa.phys),
// so the AVX2 ones provably stay within Y0–Y15.
type gemmISA struct {
	isa
	mr     int // rows of the C tile (broadcast operand)
	nv     int // vectors per C tile row; NR = nv·lanes
	unroll int // k steps per loop iteration
	// bf16: the steps are k-pairs of bf16 values (one 32-bit word per row
	// and column) multiplied by VDPBF16PS (gemm_bf16.go); the name gains
	// "BF16" before the suffix.
	bf16 bool
}

// name is the body's name for kind ("gemmKernel", …).
func (g gemmISA) name(kind string) string {
	if g.bf16 {
		return kind + "BF16" + g.suffix
	}
	return kind + g.suffix
}

func (g gemmISA) nr() int { return g.nv * g.lanes }

// The two levels' tiles. AVX2: 6×16, 12 accumulators Y0–Y11, B in Y12–Y13,
// broadcasts in Y14–Y15. AVX-512: 12×32, 24 accumulators Z0–Z23, B in
// Z28–Z29, broadcasts in Z30–Z31.
var (
	gemmAVX2   = gemmISA{isa: avx2, mr: 6, nv: 2, unroll: 4}
	gemmAVX512 = gemmISA{isa: avx512, mr: 12, nv: 2, unroll: 4}
	// gemmBF16AVX512 is the AVX512_BF16 kernel on the AVX-512 tile.
	gemmBF16AVX512 = gemmISA{isa: avx512, mr: 12, nv: 2, unroll: 4, bf16: true}
)

// gemm emits, for each level, the micro-kernel and the tile merge, then the
// packing routines that both levels share (VEX-encoded, Y0–Y15 only).
func gemm() {
	for _, g := range []gemmISA{gemmAVX2, gemmAVX512} {
		g.kernel()
		g.merge()
		g.scale()
	}
	gemmPackT(8)
	gemmPackT(4)
	gemmPackT(2)
	for _, w := range []int{gemmAVX512.nr(), gemmAVX2.nr(), gemmAVX512.mr, gemmAVX2.mr} {
		gemmPackC(w)
	}
	gemmPrefetch()
	gemmBF16AVX512.kernel()
	gemmPairBF16()
	gemmRoundBF16()
	gemmRoundBF16Z()
	gemmTileBF16AMX()
	gemmPeakAMX()
	gemmCvtBF16()
}

// gemmPrefetch emits gemmPrefetch(p, ld, rows, width): PREFETCHT1 of every
// cache line of rows rows of width floats at p (row stride ld floats), so
// that the source of the next panel streams into L2 while the kernels run
// on this one. Prefetches never fault.
func gemmPrefetch() {
	implement("gemmPrefetch", "gemmPrefetch prefetches into L2 the lines of rows rows of width floats at p, row stride ld floats.")
	p := Load(Param("p"), GP64())
	ld := Load(Param("ld"), GP64())
	rows := Load(Param("rows"), GP64())
	w := Load(Param("width"), GP64())
	SHLQ(U8(2), ld)
	SHLQ(U8(2), w)
	DECQ(w) // offset of the row's last byte
	TESTQ(rows, rows)
	JZ(LabelRef("gemmPrefetch_done"))
	Label("gemmPrefetch_row")
	off := GP64()
	XORQ(off, off)
	Label("gemmPrefetch_line")
	PREFETCHT1(Mem{Base: p, Index: off, Scale: 1})
	ADDQ(U8(64), off)
	CMPQ(off, w)
	JL(LabelRef("gemmPrefetch_line"))
	PREFETCHT1(Mem{Base: p, Index: w, Scale: 1})
	ADDQ(ld, p)
	DECQ(rows)
	JNZ(LabelRef("gemmPrefetch_row"))
	Label("gemmPrefetch_done")
	ret()
}

// regs of the accumulators and the scratch vectors.
func (g gemmISA) acc(i, v int) reg.VecPhysical { return g.phys(i*g.nv + v) }

func (g gemmISA) bvec(v int) reg.VecPhysical {
	return g.phys(g.regs - 4 + v) // Y12, Y13 / Z28, Z29
}

func (g gemmISA) tvec(u int) reg.VecPhysical {
	return g.phys(g.regs - 2 + u%2) // Y14, Y15 / Z30, Z31
}

func (g gemmISA) zero(r reg.VecPhysical) {
	if g.z {
		VPXORD(r, r, r)
	} else {
		VXORPS(r, r, r)
	}
}

// jumpMR emits the jump to label <name>_mr<r> for mr = r in g.mr..1, and a
// return (after VZEROUPPER) for any other mr.
func (g gemmISA) jumpMR(name string, mr reg.Register) {
	for r := g.mr; r >= 1; r-- {
		CMPQ(mr, Imm(uint64(r)))
		JEQ(LabelRef(fmt.Sprintf("%s_mr%d", name, r)))
	}
	ret()
}

// kernel emits gemmKernel<ISA>(mr, kc, a, b, c, ldc, alpha, beta): with A the
// packed sliver (kc steps of MR floats, the first mr used) and B the packed
// panel (kc steps of NR floats), it computes the mr×NR tile T = A·B in
// registers and stores C ← α·T + β·C to the mr rows of NR floats at c (row
// stride ldc floats). β = 0 (either sign) never reads C. One body per mr is
// emitted; mr outside 1..MR does nothing.
func (g gemmISA) kernel() {
	name := g.name("gemmKernel")
	what := "packed"
	if g.bf16 {
		what = "bf16 pair-packed"
	}
	implement(name, fmt.Sprintf("%s computes an mr×%d tile of C ← α·A·B + β·C from a %s %d-row sliver of A and %d-column panel of B (1 ≤ mr ≤ %d).",
		name, g.nr(), what, g.mr, g.nr(), g.mr))
	mr := Load(Param("mr"), GP64())
	kc := Load(Param("kc"), GP64())
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	g.jumpMR(name, mr)
	for r := g.mr; r >= 1; r-- {
		Label(fmt.Sprintf("%s_mr%d", name, r))
		g.body(name, r, kc, a, b, c, ldc)
	}
}

// body is the kernel for one mr: accumulate over kc, then store.
func (g gemmISA) body(name string, r int, kc, a, b, c, ldc reg.Register) {
	lbl := func(s string) string { return fmt.Sprintf("%s_mr%d_%s", name, r, s) }
	for i := 0; i < r; i++ {
		for v := 0; v < g.nv; v++ {
			g.zero(g.acc(i, v))
		}
	}
	// Pull the C rows toward L1 while the tile is computed.
	cp := GP64()
	MOVQ(c, cp)
	for i := 0; i < r; i++ {
		for off := 0; off < 4*g.nr()-1; off += 64 {
			PREFETCHT0(Mem{Base: cp, Disp: off})
		}
		PREFETCHT0(Mem{Base: cp, Disp: 4*g.nr() - 1})
		if i+1 < r {
			ADDQ(ldc, cp)
		}
	}
	step := func(u int) {
		for v := 0; v < g.nv; v++ {
			VMOVUPS(Mem{Base: b, Disp: 4 * (u*g.nr() + v*g.lanes)}, g.bvec(v))
		}
		for i := 0; i < r; i++ {
			t := g.tvec(i)
			VBROADCASTSS(Mem{Base: a, Disp: 4 * (u*g.mr + i)}, t)
			for v := 0; v < g.nv; v++ {
				if g.bf16 {
					emitVDPBF16PS(t, g.bvec(v), g.acc(i, v))
					continue
				}
				VFMADD231PS(g.bvec(v), t, g.acc(i, v))
			}
		}
	}
	n := GP64()
	MOVQ(kc, n)
	SHRQ(U8(log2(g.unroll)), n)
	JZ(LabelRef(lbl("tail")))
	Label(lbl("loop"))
	for u := 0; u < g.unroll; u++ {
		step(u)
	}
	ADDQ(U32(4*g.unroll*g.mr), a)
	ADDQ(U32(4*g.unroll*g.nr()), b)
	DECQ(n)
	JNZ(LabelRef(lbl("loop")))
	Label(lbl("tail"))
	ANDQ(U8(g.unroll-1), kc)
	JZ(LabelRef(lbl("store")))
	Label(lbl("tailloop"))
	step(0)
	ADDQ(U8(4*g.mr), a)
	ADDQ(U32(4*g.nr()), b)
	DECQ(kc)
	JNZ(LabelRef(lbl("tailloop")))
	Label(lbl("store"))
	g.store(lbl, r, c, ldc, func(i, v int) {})
}

// store writes C ← α·acc + β·C for r rows at c (stride ldc bytes), with a
// branch that never reads C when β = ±0. load(i, v), when it emits
// anything, fills acc(i, v) first (the merge's tile load).
func (g gemmISA) store(lbl func(string) string, r int, c, ldc reg.Register, load func(i, v int)) {
	alpha, beta := g.bvec(0), g.bvec(1)
	VBROADCASTSS(addr(Param("alpha")), alpha)
	bits := GP32()
	MOVL(addr(Param("beta")), bits)
	ANDL(U32(0x7fffffff), bits)
	JZ(LabelRef(lbl("beta0")))
	VBROADCASTSS(addr(Param("beta")), beta)
	for i := 0; i < r; i++ {
		for v := 0; v < g.nv; v++ {
			load(i, v)
			VMULPS(alpha, g.acc(i, v), g.acc(i, v))
			VFMADD231PS(Mem{Base: c, Disp: 4 * v * g.lanes}, beta, g.acc(i, v))
			VMOVUPS(g.acc(i, v), Mem{Base: c, Disp: 4 * v * g.lanes})
		}
		if i+1 < r {
			ADDQ(ldc, c)
		}
	}
	ret()
	Label(lbl("beta0"))
	for i := 0; i < r; i++ {
		for v := 0; v < g.nv; v++ {
			load(i, v)
			VMULPS(alpha, g.acc(i, v), g.acc(i, v))
			VMOVUPS(g.acc(i, v), Mem{Base: c, Disp: 4 * v * g.lanes})
		}
		if i+1 < r {
			ADDQ(ldc, c)
		}
	}
	ret()
}

// merge emits gemmMerge<ISA>(mr, t, c, ldc, alpha, beta): C ← α·T + β·C for
// the mr×NR tile T stored row by row (stride NR) at t. It is the second half
// of the kernel's store, for tiles that went through an L1 buffer.
func (g gemmISA) merge() {
	name := "gemmMerge" + g.suffix
	implement(name, fmt.Sprintf("%s computes C ← α·T + β·C for an mr×%d tile T (row stride %d) (1 ≤ mr ≤ %d).", name, g.nr(), g.nr(), g.mr))
	mr := Load(Param("mr"), GP64())
	t := Load(Param("t"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	g.jumpMR(name, mr)
	for r := g.mr; r >= 1; r-- {
		Label(fmt.Sprintf("%s_mr%d", name, r))
		lbl := func(s string) string { return fmt.Sprintf("%s_mr%d_%s", name, r, s) }
		g.store(lbl, r, c, ldc, func(i, v int) {
			VMOVUPS(Mem{Base: t, Disp: 4 * (i*g.nr() + v*g.lanes)}, g.acc(i, v))
		})
	}
}

// scale emits gemmScale<ISA>(mr, t, c, ldc, rs, cs, beta): the fused
// epilogue of GemmNTPackedScaled. For the mr×NR tile T stored row by row
// (stride NR) at t, C ← rs[i]·(cs[j]·(T + β·C)), β = 0 never reading C (the
// driver passes 0 or 1). The column scales stay in two registers, the row
// scale is broadcast per row; the order of the operations is the Go
// twin's (gemmScaleGeneric), so the results are bitwise equal.
func (g gemmISA) scale() {
	name := "gemmScale" + g.suffix
	implement(name, fmt.Sprintf("%s computes C ← rs[i]·(cs[j]·(T + β·C)) for an mr×%d tile T (row stride %d) (1 ≤ mr ≤ %d).", name, g.nr(), g.nr(), g.mr))
	mr := Load(Param("mr"), GP64())
	t := Load(Param("t"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	rs := Load(Param("rs"), GP64())
	cs := Load(Param("cs"), GP64())
	SHLQ(U8(2), ldc)
	CMPQ(mr, Imm(1))
	JL(LabelRef(name + "_done"))
	CMPQ(mr, Imm(uint64(g.mr)))
	JG(LabelRef(name + "_done"))
	for v := 0; v < g.nv; v++ {
		VMOVUPS(Mem{Base: cs, Disp: 4 * v * g.lanes}, g.bvec(v))
	}
	r := g.tvec(0)
	bits := GP32()
	MOVL(addr(Param("beta")), bits)
	ANDL(U32(0x7fffffff), bits)
	JZ(LabelRef(name + "_beta0"))
	for _, beta := range []bool{true, false} {
		loop := name + "_loop"
		if !beta {
			Label(name + "_beta0")
			loop = name + "_loop0"
		}
		Label(loop)
		VBROADCASTSS(Mem{Base: rs}, r)
		for v := 0; v < g.nv; v++ {
			VMOVUPS(Mem{Base: t, Disp: 4 * v * g.lanes}, g.acc(0, v))
			if beta {
				VADDPS(Mem{Base: c, Disp: 4 * v * g.lanes}, g.acc(0, v), g.acc(0, v))
			}
			VMULPS(g.bvec(v), g.acc(0, v), g.acc(0, v))
			VMULPS(r, g.acc(0, v), g.acc(0, v))
			VMOVUPS(g.acc(0, v), Mem{Base: c, Disp: 4 * v * g.lanes})
		}
		ADDQ(U32(uint64(4*g.nr())), t)
		ADDQ(U8(4), rs)
		ADDQ(ldc, c)
		DECQ(mr)
		JNZ(LabelRef(loop))
		ret()
	}
	Label(name + "_done")
	ret()
}

// gemmPackT emits gemmPackT<w>(dst, ldd, src, lds, kc8): the transposing
// pack dst[p·ldd + i] = src[i·lds + p] for the w rows i < w of src and the
// 8·kc8 columns p, by in-register w×8 transposes (w = 8, 4 or 2).
// VEX-encoded on Y0–Y15, so both levels use it.
func gemmPackT(w int) {
	name := fmt.Sprintf("gemmPackT%d", w)
	implement(name, fmt.Sprintf("%s sets dst[p·ldd+i] = src[i·lds+p] for i < %d and p < 8·kc8.", name, w))
	dst := Load(Param("dst"), GP64())
	ldd := Load(Param("ldd"), GP64())
	src := Load(Param("src"), GP64())
	lds := Load(Param("lds"), GP64())
	n := Load(Param("kc8"), GP64())
	SHLQ(U8(2), ldd)
	SHLQ(U8(2), lds)
	lds3 := GP64()
	if w >= 4 {
		LEAQ(Mem{Base: lds, Index: lds, Scale: 2}, lds3)
	}
	ldd3 := GP64()
	LEAQ(Mem{Base: ldd, Index: ldd, Scale: 2}, ldd3)
	// row i of the 8 (or 4) is at src4·[i/4] + {0, lds, 2·lds, 3·lds}[i%4]
	src4 := GP64()
	if w == 8 {
		LEAQ(Mem{Base: src, Index: lds, Scale: 4}, src4)
	}
	// column p of the 8 goes to dst + {0,ldd,2ldd,3ldd}[p%4] + 4·ldd·[p/4]
	dst4 := GP64()
	ldd8 := GP64()
	MOVQ(ldd, ldd8)
	SHLQ(U8(3), ldd8)
	rowAt := func(base, idx, idx3 reg.Register, j int) Mem {
		switch j {
		case 0:
			return Mem{Base: base}
		case 1:
			return Mem{Base: base, Index: idx, Scale: 1}
		case 2:
			return Mem{Base: base, Index: idx, Scale: 2}
		default:
			return Mem{Base: base, Index: idx3, Scale: 1}
		}
	}
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	LEAQ(Mem{Base: dst, Index: ldd, Scale: 4}, dst4)
	y := avx2.phys
	for i := 0; i < w; i++ {
		base := src
		if i >= 4 {
			base = src4
		}
		VMOVUPS(rowAt(base, lds, lds3, i%4), y(i))
	}
	if w == 2 {
		// r0p0 r1p0 r0p1 r1p1 | p4 p5, and p2 p3 | p6 p7: 64-bit stores
		VUNPCKLPS(y(1), y(0), y(2))
		VUNPCKHPS(y(1), y(0), y(3))
		VEXTRACTF128(U8(1), y(2), y(4).AsX())
		VEXTRACTF128(U8(1), y(3), y(5).AsX())
		for p, x := range []reg.VecPhysical{y(2), y(3), y(4), y(5)} {
			base := dst
			if p >= 2 {
				base = dst4
			}
			VMOVLPS(x.AsX(), rowAt(base, ldd, ldd3, 2*(p%2)))
			VMOVHPS(x.AsX(), rowAt(base, ldd, ldd3, 2*(p%2)+1))
		}
	}
	// 2×2 interleave of row pairs, then 4×4 blocks within each 128-bit lane.
	for q := 0; q < w/4; q++ {
		r0, r1, r2, r3 := y(4*q), y(4*q+1), y(4*q+2), y(4*q+3)
		t0, t1, t2, t3 := y(8+4*q), y(8+4*q+1), y(8+4*q+2), y(8+4*q+3)
		VUNPCKLPS(r1, r0, t0) // r0p0 r1p0 r0p1 r1p1 | p4 p5
		VUNPCKHPS(r1, r0, t1) // r0p2 r1p2 r0p3 r1p3 | p6 p7
		VUNPCKLPS(r3, r2, t2)
		VUNPCKHPS(r3, r2, t3)
		VSHUFPS(U8(0x44), t2, t0, r0) // p0 (4 rows) | p4
		VSHUFPS(U8(0xee), t2, t0, r1) // p1 | p5
		VSHUFPS(U8(0x44), t3, t1, r2) // p2 | p6
		VSHUFPS(U8(0xee), t3, t1, r3) // p3 | p7
	}
	if w == 8 {
		// rows 0–3 in y0..y3 and rows 4–7 in y4..y7, each p | p+4
		for p := 0; p < 4; p++ {
			VPERM2F128(U8(0x20), y(4+p), y(p), y(8+p))  // p: rows 0–7
			VPERM2F128(U8(0x31), y(4+p), y(p), y(12+p)) // p+4
		}
		for p := 0; p < 4; p++ {
			VMOVUPS(y(8+p), rowAt(dst, ldd, ldd3, p))
			VMOVUPS(y(12+p), rowAt(dst4, ldd, ldd3, p))
		}
	} else if w == 4 {
		for p := 0; p < 4; p++ {
			VMOVUPS(y(p).AsX(), rowAt(dst, ldd, ldd3, p))
			VEXTRACTF128(U8(1), y(p), rowAt(dst4, ldd, ldd3, p))
		}
	}
	ADDQ(U8(32), src)
	if w == 8 {
		ADDQ(U8(32), src4)
	}
	ADDQ(ldd8, dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}

// gemmPackC emits gemmPackC<w>(dst, ldd, src, lds, kc): the copying pack
// dst[p·ldd + j] = src[p·lds + j] for j < w and p < kc, in 8-, 4- and
// 2-float moves (VEX on Y0–Y15 and plain MOVQ, for both levels).
func gemmPackC(w int) {
	name := fmt.Sprintf("gemmPackC%d", w)
	implement(name, fmt.Sprintf("%s sets dst[p·ldd+j] = src[p·lds+j] for j < %d and p < kc.", name, w))
	dst := Load(Param("dst"), GP64())
	ldd := Load(Param("ldd"), GP64())
	src := Load(Param("src"), GP64())
	lds := Load(Param("lds"), GP64())
	n := Load(Param("kc"), GP64())
	SHLQ(U8(2), ldd)
	SHLQ(U8(2), lds)
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_loop")
	y := avx2.phys
	j, k := 0, 0
	for ; j+8 <= w; j, k = j+8, k+1 {
		VMOVUPS(Mem{Base: src, Disp: 4 * j}, y(k))
	}
	x := -1
	if j+4 <= w {
		x = k
		VMOVUPS(Mem{Base: src, Disp: 4 * j}, y(k).AsX())
	}
	var q reg.GPVirtual
	if w%4 >= 2 {
		q = GP64()
		MOVQ(Mem{Base: src, Disp: 4 * (w &^ 3)}, q)
	}
	if w%2 != 0 {
		panic("gemmPackC: odd width")
	}
	for j, k = 0, 0; j+8 <= w; j, k = j+8, k+1 {
		VMOVUPS(y(k), Mem{Base: dst, Disp: 4 * j})
	}
	if x >= 0 {
		VMOVUPS(y(x).AsX(), Mem{Base: dst, Disp: 4 * j})
	}
	if q != nil {
		MOVQ(q, Mem{Base: dst, Disp: 4 * (w &^ 3)})
	}
	ADDQ(lds, src)
	ADDQ(ldd, dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}

func log2(n int) int {
	l := 0
	for 1<<l < n {
		l++
	}
	if 1<<l != n {
		panic("gemm: not a power of two")
	}
	return l
}
