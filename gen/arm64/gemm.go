package main

import "fmt"

func init() { families["gemm"] = gemm }

// The NEON micro-tile: gemmMR rows of C by gemmNR columns, held in
// gemmMR·gemmNV = 24 accumulators V0–V23. Each k step loads the sliver's
// MR floats of Ã (two vectors) and the panel's NR floats of B̃ (three
// vectors) and does 24 fused multiply-adds by element,
//
//	acc[i][j] += b_j · a.s[i]   (b_j: floats 4j..4j+3 of the B̃ row)
//
// so 29 of the 32 vector registers are live in the loop. 8×12 loads 5
// vectors per 24 FMLAs: the k loop is bound by the FMLA pipes (2 on
// Neoverse N1 and Cortex-A72, 4 on Apple M1), not the load ports, and 24
// independent chains cover FMLA latency × pipes (4 × 4 = 16 on M1). The
// transposed shape 12×8 costs the same; 8×12 makes each C row three
// consecutive vectors (one VST1) and keeps MR a multiple of the packs' 8.
// asm/gemm_arm64.go repeats MR and NR (gemmNEONMR, gemmNEONNR); its tests
// cover every mr in 1..2·MR+1, so a mismatch cannot pass them.
const (
	gemmMR     = 8
	gemmNR     = 12
	gemmNV     = gemmNR / lanes // vectors per C row
	gemmUnroll = 4              // k steps per iteration of the k loop
)

// gemm emits the micro-kernel, the tile merge, the transposing packs of 8,
// 4 and 2 rows and the copying packs of MR and NR columns. The driver's
// prefetch of the next B source is left nil (Go's, which does nothing):
// whether a PRFM PLDL2KEEP loop pays beside the cores' own prefetchers
// wants measuring on hardware first.
func gemm(f *File) {
	gemmKernel(f)
	gemmKernelBF16(f)
	gemmMerge(f)
	gemmScale(f)
	for _, w := range []int{8, 4, 2} {
		gemmPackT(f, w)
	}
	for _, w := range []int{gemmMR, gemmNR} {
		gemmPackC(f, w)
	}
}

// ld1Stride loads the consecutive registers vs from (base) and advances base
// by the general register inc (any stride).
func (e *Func) ld1Stride(base, inc Reg, a Arr, vs ...VReg) {
	e.Op("VLD1.P (%v)(%v), %s", base, inc, regList(a, vs))
}

// st1Stride stores the consecutive registers vs to (base) and advances base
// by the general register inc.
func (e *Func) st1Stride(base, inc Reg, a Arr, vs ...VReg) {
	e.Op("VST1.P %s, (%v)(%v)", regList(a, vs), base, inc)
}

// st1LaneStride stores lane i of v (element size of a) to (base) and
// advances base by the general register inc.
func (e *Func) st1LaneStride(v VReg, a Arr, i int, base, inc Reg) {
	lane("st1", v, a, i) // range check
	e.Op("VST1.P %v.%s[%d], (%v)(%v)", v, map[Arr]string{S: "S", D: "D"}[a], i, base, inc)
}

// gemmJumpMR branches to <name>_mr<r> for mr = r in MR..1 (MR, the full
// sliver, first) and returns for any other mr.
func gemmJumpMR(e *Func, name string, mr Reg) {
	for r := gemmMR; r >= 1; r-- {
		e.Op("CMP $%d, %v", r, mr)
		e.Op("BEQ %s_mr%d", name, r)
	}
	e.RET()
}

// gemmKernel emits gemmKernelNEON(mr, kc, a, b, c, ldc, alpha, beta): with a
// the packed sliver (kc steps of MR floats, the first mr used) and b the
// packed panel (kc steps of NR floats), it computes the mr×NR tile T = A·B
// in registers and stores C ← α·T + β·C to the mr rows of NR floats at c
// (row stride ldc floats); β = ±0 never reads C. One body per mr, so an
// edge sliver does only its rows' FMLAs; mr outside 1..MR does nothing.
func gemmKernel(f *File) {
	const name = "gemmKernelNEON"
	e := f.Implement(name, fmt.Sprintf("%s computes an mr×%d tile of C ← α·A·B + β·C from a packed %d-row sliver of A and %d-column panel of B (1 ≤ mr ≤ %d).",
		name, gemmNR, gemmMR, gemmNR, gemmMR))
	mr, kc := e.LoadArg("mr"), e.LoadArg("kc")
	a, b, c, ldc := e.LoadArg("a"), e.LoadArg("b"), e.LoadArg("c"), e.LoadArg("ldc")
	e.Op("LSL $2, %v, %v", ldc, ldc) // bytes
	gemmJumpMR(e, "kernel", mr)
	fmla := func(d, n, m VReg, i int) Word { return fmlaElem(d, n, m, S4, i) }
	for r := gemmMR; r >= 1; r-- {
		e.Label(fmt.Sprintf("kernel_mr%d", r))
		gemmKernelBody(e, r, kc, a, b, c, ldc, fmla)
	}
}

// gemmKernelBF16 emits gemmKernelBF16NEON: the same tile on bf16 pair
// packs (one 32-bit word per row or column and k-pair, asm's gemmBF16Pair
// layout), each FMLA by element replaced by a BFDOT by element (FEAT_BF16:
// a lane adds the products of its two bf16 pairs), so the k loop runs over
// pairs.
func gemmKernelBF16(f *File) {
	const name = "gemmKernelBF16NEON"
	e := f.Implement(name, fmt.Sprintf("%s computes an mr×%d tile of C ← α·A·B + β·C from a bf16 pair-packed %d-row sliver of A and %d-column panel of B (1 ≤ mr ≤ %d), by BFDOT.",
		name, gemmNR, gemmMR, gemmNR, gemmMR))
	mr, kc := e.LoadArg("mr"), e.LoadArg("kc")
	a, b, c, ldc := e.LoadArg("a"), e.LoadArg("b"), e.LoadArg("c"), e.LoadArg("ldc")
	e.Op("LSL $2, %v, %v", ldc, ldc) // bytes
	gemmJumpMR(e, "kernel", mr)
	for r := gemmMR; r >= 1; r-- {
		e.Label(fmt.Sprintf("kernel_mr%d", r))
		gemmKernelBody(e, r, kc, a, b, c, ldc, bfdotElem)
	}
}

// gemmKernelBody is the kernel for mr = r, mac(acc, b, a, i) the
// multiply-add by element i of a; it ends in RET, so it updates kc, a, b
// and c in place.
func gemmKernelBody(e *Func, r int, kc, a, b, c, ldc Reg, mac func(d, n, m VReg, i int) Word) {
	lbl := func(s string) string { return fmt.Sprintf("kernel_mr%d_%s", r, s) }
	acc := make([][]VReg, r)
	for i := range acc {
		acc[i] = e.Vs(gemmNV) // consecutive: one VST1 per row
		for _, v := range acc[i] {
			e.I(moviZero(v))
		}
	}
	// Hint the C rows toward L1 for the store while the tile is computed:
	// a row of 48 bytes spans at most the lines of its first and last byte.
	cp := e.GP()
	e.Op("MOVD %v, %v", c, cp)
	for i := 0; i < r; i++ {
		e.I(prfum(pstl1keep, cp, 0), prfum(pstl1keep, cp, 4*gemmNR-1))
		if i+1 < r {
			e.Op("ADD %v, %v, %v", ldc, cp, cp)
		}
	}
	e.FreeGP(cp)

	av, bv := e.Vs(2), e.Vs(gemmNV)
	step := func() {
		// Both A vectors even when r ≤ 4: the sliver holds MR floats a step
		// (rows past mr are never used, whatever they hold).
		e.Ld1(a, true, S4, av...)
		e.Ld1(b, true, S4, bv...)
		for i := 0; i < r; i++ {
			for j, v := range acc[i] {
				e.I(mac(v, bv[j], av[i/lanes], i%lanes))
			}
		}
	}
	n := e.GP()
	e.Op("LSR $%d, %v, %v", gemmLog2(gemmUnroll), kc, n)
	e.Op("CBZ %v, %s", n, lbl("tail"))
	e.Label(lbl("loop"))
	for range gemmUnroll {
		step()
	}
	e.Op("SUBS $1, %v, %v", n, n)
	e.Op("BNE %s", lbl("loop"))
	e.Label(lbl("tail"))
	e.Op("AND $%d, %v, %v", gemmUnroll-1, kc, n)
	e.Op("CBZ %v, %s", n, lbl("store"))
	e.Label(lbl("tailloop"))
	step()
	e.Op("SUBS $1, %v, %v", n, n)
	e.Op("BNE %s", lbl("tailloop"))
	e.Label(lbl("store"))
	e.FreeGP(n)
	e.FreeV(av...)
	e.FreeV(bv...)

	gemmStore(e, lbl, r, c, ldc, func(i int) []VReg { return acc[i] })
	for _, row := range acc {
		e.FreeV(row...)
	}
}

// gemmStore writes C ← α·T + β·C for r rows at c (stride ldc bytes; c is
// advanced), T's row i in the NV consecutive registers row(i) (emitting any
// load they need), as α·T first, then + β·C fused, the AVX kernels' order.
// β = ±0 takes a branch that never reads C. It returns from the function.
func gemmStore(e *Func, lbl func(string) string, r int, c, ldc Reg, row func(i int) []VReg) {
	alpha, beta := e.LoadArgF("alpha"), e.LoadArgF("beta")
	e.I(fcmpZero(beta, S))
	e.Op("BEQ %s", lbl("beta0"))
	cv := e.Vs(gemmNV)
	for i := 0; i < r; i++ {
		gemmMergeRow(e, row(i), cv, alpha, beta, c, ldc)
	}
	e.RET()
	e.FreeV(cv...)
	e.Label(lbl("beta0"))
	for i := 0; i < r; i++ {
		gemmMergeRow(e, row(i), nil, alpha, beta, c, ldc)
	}
	e.RET()
	e.FreeV(alpha, beta)
}

// gemmMergeRow stores the row α·t + β·C to the NV floats of C at c and
// advances c by ldc bytes: t scaled first, then β·C added fused, C loaded
// into cv; with cv nil (β = ±0), α·t alone, C never read.
func gemmMergeRow(e *Func, t, cv []VReg, alpha, beta VReg, c, ldc Reg) {
	if cv != nil {
		e.Ld1(c, false, S4, cv...)
	}
	for _, v := range t {
		e.I(fmulElem(v, v, alpha, S4, 0))
	}
	if cv != nil {
		for j, v := range t {
			e.I(fmlaElem(v, cv[j], beta, S4, 0))
		}
	}
	e.st1Stride(c, ldc, S4, t...)
}

// gemmMerge emits gemmMergeNEON(mr, t, c, ldc, alpha, beta): C ← α·T + β·C
// for the mr×NR tile T stored row by row (stride NR) at t, the kernel's
// store on its own, for tiles that went through the L1 buffer. A loop over
// the rows; mr outside 1..MR does nothing.
func gemmMerge(f *File) {
	const name = "gemmMergeNEON"
	e := f.Implement(name, fmt.Sprintf("%s computes C ← α·T + β·C for an mr×%d tile T (row stride %d) (1 ≤ mr ≤ %d).",
		name, gemmNR, gemmNR, gemmMR))
	mr, t := e.LoadArg("mr"), e.LoadArg("t")
	c, ldc := e.LoadArg("c"), e.LoadArg("ldc")
	e.Op("LSL $2, %v, %v", ldc, ldc)
	e.Op("CMP $1, %v", mr)
	e.Op("BLT merge_done")
	e.Op("CMP $%d, %v", gemmMR, mr)
	e.Op("BGT merge_done")
	alpha, beta := e.LoadArgF("alpha"), e.LoadArgF("beta")
	tv, cv := e.Vs(gemmNV), e.Vs(gemmNV)
	e.I(fcmpZero(beta, S))
	e.Op("BEQ merge_beta0")
	e.Label("merge_loop")
	e.Ld1(t, true, S4, tv...)
	gemmMergeRow(e, tv, cv, alpha, beta, c, ldc)
	e.Op("SUBS $1, %v, %v", mr, mr)
	e.Op("BNE merge_loop")
	e.RET()
	e.Label("merge_beta0")
	e.Ld1(t, true, S4, tv...)
	gemmMergeRow(e, tv, nil, alpha, beta, c, ldc)
	e.Op("SUBS $1, %v, %v", mr, mr)
	e.Op("BNE merge_beta0")
	e.Label("merge_done")
	e.RET()
}

// gemmScale emits gemmScaleNEON(mr, t, c, ldc, rs, cs, beta): the fused
// epilogue of GemmNTPackedScaled. For the mr×NR tile T stored row by row
// (stride NR) at t, C ← rs[i]·(cs[j]·(T + β·C)), β = ±0 never reading C
// (the driver passes 0 or 1), in the Go twin's order (gemmScaleGeneric),
// so the results are bitwise equal. A loop over the rows; mr outside 1..MR
// does nothing.
func gemmScale(f *File) {
	const name = "gemmScaleNEON"
	e := f.Implement(name, fmt.Sprintf("%s computes C ← rs[i]·(cs[j]·(T + β·C)) for an mr×%d tile T (row stride %d) (1 ≤ mr ≤ %d).",
		name, gemmNR, gemmNR, gemmMR))
	mr, t := e.LoadArg("mr"), e.LoadArg("t")
	c, ldc := e.LoadArg("c"), e.LoadArg("ldc")
	rs, cs := e.LoadArg("rs"), e.LoadArg("cs")
	e.Op("LSL $2, %v, %v", ldc, ldc)
	e.Op("CMP $1, %v", mr)
	e.Op("BLT scale_done")
	e.Op("CMP $%d, %v", gemmMR, mr)
	e.Op("BGT scale_done")
	beta := e.LoadArgF("beta")
	csv, tv, cv, r := e.Vs(gemmNV), e.Vs(gemmNV), e.Vs(gemmNV), e.V()
	e.Ld1(cs, false, S4, csv...)
	e.I(fcmpZero(beta, S))
	e.Op("BEQ scale_beta0")
	for _, withC := range []bool{true, false} {
		loop := "scale_loop"
		if !withC {
			e.Label("scale_beta0")
			loop = "scale_loop0"
		}
		e.Label(loop)
		e.Ld1(t, true, S4, tv...)
		e.LdrSPost(r, rs)
		if withC {
			e.Ld1(c, false, S4, cv...)
			for j, v := range tv {
				e.I(fadd(v, v, cv[j], S4))
			}
		}
		for j, v := range tv {
			e.I(fmul(v, v, csv[j], S4))
		}
		for _, v := range tv {
			e.I(fmulElem(v, v, r, S4, 0))
		}
		e.st1Stride(c, ldc, S4, tv...)
		e.Op("SUBS $1, %v, %v", mr, mr)
		e.Op("BNE %s", loop)
		e.RET()
	}
	e.Label("scale_done")
	e.RET()
}

// gemmPackT emits gemmPackT<w>NEON(dst, ldd, src, lds, kc8): the
// transposing pack dst[p·ldd + i] = src[i·lds + p] for the w rows i < w of
// src and the 8·kc8 columns p (w = 8, 4 or 2). Each iteration loads 8
// columns of the w rows and transposes them in registers: 4×4 blocks by
// trn1/trn2 on 4S, then 2D (w = 8, 4); zip1/zip2 pairs (w = 2). Column p
// is stored as w consecutive floats at dst + p·ldd: one VST1 of two
// registers (w = 8), one register (4), one 64-bit lane (2).
func gemmPackT(f *File, w int) {
	if w != 8 && w != 4 && w != 2 {
		panic(fmt.Sprintf("arm64: gemmPackT: %d rows, want 8, 4 or 2", w))
	}
	name := fmt.Sprintf("gemmPackT%dNEON", w)
	gemmPack(f, name, fmt.Sprintf("%s sets dst[p·ldd+i] = src[i·lds+p] for i < %d and p < 8·kc8.", name, w),
		"kc8", fmt.Sprintf("packT%d", w), func(e *Func, dst, ldd, src, lds Reg) func() {
			// in[i] = row i's 8 columns (two consecutive registers).
			in := make([][]VReg, w)
			for i := range in {
				in[i] = e.Vs(2)
			}
			p := e.GP()
			return func() { gemmPackTStep(e, w, in, p, dst, ldd, src, lds) }
		})
}

// gemmPackTStep is one iteration of gemmPackT's loop: 8 columns of the w
// rows at src loaded into in (through the cursor p), transposed, stored.
func gemmPackTStep(e *Func, w int, in [][]VReg, p, dst, ldd, src, lds Reg) {
	e.Op("MOVD %v, %v", src, p)
	for i := range in {
		if i+1 < w {
			e.ld1Stride(p, lds, S4, in[i]...)
		} else {
			e.Ld1(p, false, S4, in[i]...)
		}
	}
	e.Op("ADD $32, %v, %v", src, src)
	switch w {
	case 8, 4:
		tmp := e.Vs(4)
		out := make([][]VReg, 4) // out[q] = column q of the block: w/4 registers
		for q := range out {
			out[q] = e.Vs(w / 4)
		}
		for h := 0; h < 2; h++ { // columns 4h..4h+3
			for g := 0; g < w/4; g++ { // rows 4g..4g+3
				r := func(k int) VReg { return in[4*g+k][h] }
				e.I(trn1(tmp[0], r(0), r(1), S4), trn2(tmp[1], r(0), r(1), S4),
					trn1(tmp[2], r(2), r(3), S4), trn2(tmp[3], r(2), r(3), S4))
				e.I(trn1(out[0][g], tmp[0], tmp[2], D2), trn1(out[1][g], tmp[1], tmp[3], D2),
					trn2(out[2][g], tmp[0], tmp[2], D2), trn2(out[3][g], tmp[1], tmp[3], D2))
			}
			for _, o := range out {
				e.st1Stride(dst, ldd, S4, o...)
			}
		}
		e.FreeV(tmp...)
		for _, o := range out {
			e.FreeV(o...)
		}
	case 2:
		z := e.Vs(2)
		for h := 0; h < 2; h++ {
			e.I(zip1(z[0], in[0][h], in[1][h], S4), zip2(z[1], in[0][h], in[1][h], S4))
			for _, v := range z { // columns 4h+2k, 4h+2k+1 in the two halves of z[k]
				e.st1LaneStride(v, D, 0, dst, ldd)
				e.st1LaneStride(v, D, 1, dst, ldd)
			}
		}
		e.FreeV(z...)
	}
}

// gemmPackC emits gemmPackC<w>NEON(dst, ldd, src, lds, kc): the copying
// pack dst[p·ldd + j] = src[p·lds + j] for j < w and p < kc (w a multiple
// of 4), one row of w/4 vectors at a time.
func gemmPackC(f *File, w int) {
	if w%lanes != 0 || w/lanes > 4 {
		panic(fmt.Sprintf("arm64: gemmPackC: width %d, want 4, 8, 12 or 16", w))
	}
	name := fmt.Sprintf("gemmPackC%dNEON", w)
	gemmPack(f, name, fmt.Sprintf("%s sets dst[p·ldd+j] = src[p·lds+j] for j < %d and p < kc.", name, w),
		"kc", fmt.Sprintf("packC%d", w), func(e *Func, dst, ldd, src, lds Reg) func() {
			v := e.Vs(w / lanes)
			return func() {
				e.ld1Stride(src, lds, S4, v...)
				e.st1Stride(dst, ldd, S4, v...)
			}
		})
}

// gemmPack implements the pack name(dst, ldd, src, lds, <count>): it loads
// the arguments, turns the strides into bytes and runs the loop tag_loop
// count times (none when count is 0), then returns. setup allocates what
// the loop needs and returns the emitter of one iteration, which advances
// dst and src.
func gemmPack(f *File, name, doc, count, tag string, setup func(e *Func, dst, ldd, src, lds Reg) (step func())) {
	e := f.Implement(name, doc)
	dst, ldd := e.LoadArg("dst"), e.LoadArg("ldd")
	src, lds := e.LoadArg("src"), e.LoadArg("lds")
	n := e.LoadArg(count)
	e.Op("LSL $2, %v, %v", ldd, ldd)
	e.Op("LSL $2, %v, %v", lds, lds)
	L := func(s string) string { return tag + "_" + s }
	e.Op("CBZ %v, %s", n, L("done"))
	step := setup(e, dst, ldd, src, lds)
	e.Label(L("loop"))
	step()
	e.Op("SUBS $1, %v, %v", n, n)
	e.Op("BNE %s", L("loop"))
	e.Label(L("done"))
	e.RET()
}

// gemmLog2 is the log2 of a power of two.
func gemmLog2(n int) int {
	k := 0
	for 1<<k < n {
		k++
	}
	if 1<<k != n {
		panic(fmt.Sprintf("arm64: %d is not a power of two", n))
	}
	return k
}
