package asm

import (
	"sync"
	"unsafe"

	"github.com/marginloss/marginloss/internal/simd"
)

// gemmOp names which operands are transposed.
type gemmOp uint8

const (
	gemmOpNT gemmOp = iota // A m×k, B n×k
	gemmOpNN               // A m×k, B k×n
	gemmOpTN               // A k×m, B k×n
)

// The routines a level supplies to the driver, on packed or raw operands
// addressed by pointer, so that assembly stubs serve as they are.
// gemm_arch.go holds a Go twin of each, whose doc comment states its
// contract; the driver checks every bound before it calls one.
type (
	// gemmKernelFunc computes one mr×NR tile of C ← α·Ã·B̃ + β·C from a
	// packed sliver (kc steps of MR floats) and a packed panel (kc steps of
	// NR floats), never reading C when β = ±0 (gemmKernelGeneric).
	gemmKernelFunc func(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32)
	// gemmMergeFunc is the kernel's store on its own: C ← α·T + β·C for an
	// mr×NR tile T of row stride NR (gemmMergeGeneric).
	gemmMergeFunc func(mr int, t, c *float32, ldc int, alpha, beta float32)
	// gemmPackTFunc is a transposing pack of a fixed number w of source
	// rows, 8·kc8 deep: dst[p·ldd+i] = src[i·lds+p] (gemmPackTGeneric).
	gemmPackTFunc func(dst *float32, ldd int, src *float32, lds int, kc8 int)
	// gemmPackCFunc is a copying pack of a fixed width w, kc rows:
	// dst[p·ldd+j] = src[p·lds+j] (gemmPackCGeneric).
	gemmPackCFunc func(dst *float32, ldd int, src *float32, lds int, kc int)
	// gemmScaleFunc is the scaling store, the fused epilogue of
	// GemmNTPackedScaled: C ← diag(rs)·diag-scaled columns cs of (T + β·C)
	// for an mr×NR tile T of row stride NR, β ∈ {0, 1}
	// (gemmScaleGeneric).
	gemmScaleFunc func(mr int, t, c *float32, ldc int, rs, cs *float32, beta float32)
	// gemmPrefetchFunc hints rows rows of width floats at p (row stride ld)
	// toward L2; it must never fault (gemmPrefetchGeneric does nothing).
	gemmPrefetchFunc func(p *float32, ld, rows, width int)
)

// gemmSession is state that a level's kernels share within one GEMM call:
// gemmPre calls enter before the first kernel and exit after the last (also
// when the call panics), and runs kernel, which needs that state, instead
// of the arch's own kernel (which sets it up and tears it down itself, for
// callers outside a session).
type gemmSession struct {
	enter, exit func()
	kernel      gemmKernelFunc
}

// gemmArch is one level's GotoBLAS/BLIS driver: the loops over blocks and
// the packing here, with the routines that do the work (every flop in
// kernel) supplied by the level as function values. A level builds one
// with newGemmArch and registers it with registerGemm.
type gemmArch struct {
	mr, nr     int // micro-tile
	kc, kcDeep int // depth of a single pass, of each of several passes
	mc, nc     int // blocking (mc a multiple of mr, nc of nr)

	kernel gemmKernelFunc // MR×NR tile
	merge  gemmMergeFunc  // NR wide
	scale  gemmScaleFunc  // NR wide
	// packT8, packT4 and packT2 transpose 8, 4 and 2 rows of op(A) (NT, NN)
	// or of B (NT) into a sliver or panel, 8 columns at a time; packTrans
	// does the rest in Go.
	packT8, packT4, packT2 gemmPackTFunc
	// copyA and copyB copy kc rows of MR and NR floats (packCopy): A for
	// TN, B for NN and TN.
	copyA, copyB gemmPackCFunc
	// prefetch streams the source of the next B̃ panel toward L2 while the
	// kernel runs on this one.
	prefetch gemmPrefetchFunc

	// viaTile routes every tile through the L1 tile buffer and merge (the
	// epilogue seam), for measuring what that path costs.
	viaTile bool

	// session, when set, wraps each GEMM call's kernels (AMX: the tile
	// configuration loaded once per call rather than once per tile).
	session *gemmSession

	// prec is how the driver treats its operands (gemm_bf16.go): exactly
	// (gemmF32), rounded to bfloat16 in the packs for the float32 kernel
	// (gemmBF16Round), or rounded and paired along k for a bf16 dot-product
	// kernel (gemmBF16Pair, with pair its conversion).
	prec  gemmPrec
	pair  gemmPairFunc
	round func(x []float32) // gemmBF16Round's in-place rounding of a pack
	cvt   gemmCvtFunc       // gemmBF16Tile's conversion of Ã's rows
}

// newGemmArch checks g's shape and blocking and returns it with every
// routine it leaves nil other than kernel set to the Go twin, so that a
// level whose assembly supplies only the micro-kernel (and merge) packs
// in Go. It panics on a malformed g: that is a bug in the level's file.
func newGemmArch(g gemmArch) *gemmArch {
	switch {
	case g.mr < 1 || g.nr < 1:
		panic("asm: gemmArch: empty micro-tile")
	case g.kc < 8 || g.kc%8 != 0 || g.kcDeep < 8 || g.kcDeep%8 != 0 || g.kcDeep > g.kc:
		panic("asm: gemmArch: kc and kcDeep must be multiples of 8, kcDeep ≤ kc")
	case g.mc < g.mr || g.mc%g.mr != 0 || g.nc < g.nr || g.nc%g.nr != 0:
		panic("asm: gemmArch: mc and nc must be multiples of MR and NR")
	case g.kernel == nil:
		panic("asm: gemmArch: no micro-kernel")
	case g.prec == gemmBF16Tile && (g.kc%(2*gemmTilePairs) != 0 || g.kcDeep%(2*gemmTilePairs) != 0):
		panic("asm: gemmArch: a tile driver's kc and kcDeep must be multiples of 32")
	}
	if g.merge == nil {
		g.merge = gemmMergeGeneric(g.nr)
	}
	if g.scale == nil {
		g.scale = gemmScaleGeneric(g.nr)
	}
	if g.packT8 == nil {
		g.packT8 = gemmPackTGeneric(8)
	}
	if g.packT4 == nil {
		g.packT4 = gemmPackTGeneric(4)
	}
	if g.packT2 == nil {
		g.packT2 = gemmPackTGeneric(2)
	}
	if g.copyA == nil {
		g.copyA = gemmPackCGeneric(g.mr)
	}
	if g.copyB == nil {
		g.copyB = gemmPackCGeneric(g.nr)
	}
	if g.prefetch == nil {
		g.prefetch = gemmPrefetchGeneric
	}
	if (g.prec == gemmBF16Pair || g.prec == gemmBF16Tile) && g.pair == nil {
		g.pair = gemmPairGeneric
	}
	if g.round == nil {
		g.round = roundBF16Generic
	}
	if g.cvt == nil {
		g.cvt = gemmCvtGeneric
	}
	return &g
}

// registerGemm adds g's NT, NN and TN bodies to the tables at level l, and
// g itself to gemmDrivers. Call it from the level's init.
func registerGemm(l simd.Level, g *gemmArch) {
	f := g.funcs(true)
	gemmNTImpl.Add(l, f[gemmOpNT])
	gemmNNImpl.Add(l, f[gemmOpNN])
	gemmTNImpl.Add(l, f[gemmOpTN])
	gemmDrivers[l] = g
}

// gemmDrivers holds each level's driver, registered by registerGemm, so that
// tests reach every loop and edge of the driver with small shapes and
// benchmarks time its parts.
var gemmDrivers = map[simd.Level]*gemmArch{}

// gemmTiny is the largest m·n left to the generic twins by the level
// bodies: below it, packing a whole NR-wide panel and MR-tall sliver for a
// few dot products costs more than it saves (GemmNT 1×1×512, the head's
// target logit: 0.75 µs generic, 3–8 µs packed at AVX2 and AVX-512).
const gemmTiny = 16

// funcs returns the level's NT, NN and TN bodies; tiny sends m·n ≤ gemmTiny
// to the generic twins.
func (g *gemmArch) funcs(tiny bool) [3]gemmFunc {
	var f [3]gemmFunc
	generic := [3]gemmFunc{gemmOpNT: gemmNTGeneric, gemmOpNN: gemmNNGeneric, gemmOpTN: gemmTNGeneric}
	for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
		f[op] = func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
			if tiny && m*n <= gemmTiny {
				generic[op](m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
				return
			}
			g.gemm(op, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		}
	}
	return f
}

// with returns the NT, NN and TN bodies blocked with depth passes of at
// most kc, row blocks of mc and column blocks of nc (rounded up to
// multiples of MR and NR), packing even the tiny shapes that the level's
// table leaves to generic; viaTile sends every tile through the L1 tile
// buffer (the epilogue seam).
func (g *gemmArch) with(kc, mc, nc int, viaTile bool) [3]gemmFunc {
	h := *g
	h.kc, h.kcDeep, h.mc, h.nc, h.viaTile = kc, min(g.kcDeep, kc), roundUp(mc, g.mr), roundUp(nc, g.nr), viaTile
	return h.funcs(false)
}

// tile is the micro-kernel's MR×NR.
func (g *gemmArch) tile() (mr, nr int) { return g.mr, g.nr }

// blocking is the level's own kc, mc and nc.
func (g *gemmArch) blocking() (kc, mc, nc int) { return g.kc, g.mc, g.nc }

// microKernel runs the micro-kernel once on packed operands.
func (g *gemmArch) microKernel(mr, kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[kc*g.mr-1]
	_ = b[kc*g.nr-1]
	_ = c[(mr-1)*ldc+g.nr-1]
	g.kernel(mr, kc, &a[0], &b[0], &c[0], ldc, alpha, beta)
}

// gemmScratch is one call's packing buffers. Calls take one from
// gemmScratchFree and give it back, so concurrent calls never share one
// and steady state allocates nothing.
type gemmScratch struct {
	a, b, tile []float32 // 64-byte aligned views
	abuf, bbuf []float32
	tbuf       []float32
	cvt        []float32 // the bf16 pair packs' float32 staging (gemm_bf16.go)
}

// gemmScratchFree is a stack of idle scratch, shared by the levels (each
// call grows what it takes to its needs). Unlike a sync.Pool it never drops
// buffers (a pool drops at GC, and at random under the race detector), so
// it holds as many as calls ever ran at once, at most gemmScratchKeep;
// the loss heads' per-call scratch is about 0.6 MiB, 3 MiB at most for
// m > mc.
var gemmScratchFree struct {
	mu   sync.Mutex
	free []*gemmScratch
}

const gemmScratchKeep = 64

func getGemmScratch() *gemmScratch {
	p := &gemmScratchFree
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		s := p.free[n-1]
		p.free = p.free[:n-1]
		return s
	}
	return new(gemmScratch)
}

func putGemmScratch(s *gemmScratch) {
	p := &gemmScratchFree
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < gemmScratchKeep {
		p.free = append(p.free, s)
	}
}

// aligned64 returns a slice of n floats starting on a 64-byte boundary,
// reusing *buf when it is large enough.
func aligned64(buf *[]float32, n int) []float32 {
	if cap(*buf) < n+16 {
		*buf = make([]float32, n+16)
	}
	s := (*buf)[:cap(*buf)]
	off := int((64 - uintptr(unsafe.Pointer(&s[0]))%64) % 64 / 4)
	return s[off : off+n]
}

// gemm runs C ← α·op(A)·op(B) + β·C. The wrapper has checked the shapes.
//
// Loops, outermost first: column blocks of nc (only when m needs several
// row blocks; otherwise all n at once), depth passes (one up to kc deep,
// else passes of at most kcDeep), row
// blocks of mc (pack Ã), panels of NR (pack B̃), slivers of MR (kernel).
// Pass p > 0 adds to C (β = 1), so C is read back once per pass.
func (g *gemmArch) gemm(op gemmOp, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g.gemmPre(op, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, nil, nil)
}

// gemmEpilogue is a fused epilogue of the driver: the last depth pass
// stores C[i][j] = rs[i]·(cs[j]·(T + earlier passes)) instead of α·T + β·C,
// with rs and cs indexed by C's row and column (the call's α must be 1 and
// β 0).
type gemmEpilogue struct{ rs, cs []float32 }

// passDepth is the depth of each pass over k (the last may be shallower):
// one pass up to kc deep, else passes of near-equal depth of at most
// kcDeep, rounded up to a multiple of 8 (of 32 for gemmBF16Tile, so that
// every pass but the last fills whole tile steps and the passes' packs
// lie end to end).
func (g *gemmArch) passDepth(k int) int {
	kmax := g.kc
	if k > kmax {
		kmax = g.kcDeep
	}
	passes := (k + kmax - 1) / kmax
	unit := 8
	if g.prec == gemmBF16Tile {
		unit = 2 * gemmTilePairs
	}
	return min(roundUp((k+passes-1)/passes, unit), kmax)
}

// gemmPre is gemm with either operand already packed for every pass (nil:
// pack it here): pa in packAll's layout of op(A), pb in packAllB's layout of
// op(B). A packed operand is never read from a or b.
func (g *gemmArch) gemmPre(op gemmOp, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, pa, pb []float32, ep *gemmEpilogue) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(m, n, beta, c, ldc)
		return
	}
	mr, nr := g.mr, g.nr
	kc := g.passDepth(k)
	mc, nc := roundUp(m, mr), n
	single := m <= g.mc // one Ã block: pack each B̃ panel just before use
	if !single {
		mc, nc = g.mc, min(g.nc, roundUp(n, nr))
	}
	s := getGemmScratch()
	if pa == nil {
		s.a = aligned64(&s.abuf, mc*kc)
	}
	switch {
	case pb != nil:
	case single:
		s.b = aligned64(&s.bbuf, kc*nr)
	default:
		s.b = aligned64(&s.bbuf, kc*roundUp(nc, nr))
	}
	s.tile = aligned64(&s.tbuf, mr*nr)
	kern := g.kernel
	if g.session != nil {
		g.session.enter()
		defer g.session.exit()
		kern = g.session.kernel
	}

	for jc := 0; jc < n; jc += nc {
		ncur := min(nc, n-jc)
		for pc := 0; pc < k; pc += kc {
			kcur := min(kc, k-pc)
			bet := beta
			if pc > 0 {
				bet = 1
			}
			for ic := 0; ic < m; ic += mc {
				mcur := min(mc, m-ic)
				ks := g.steps(kcur) // the kernel's depth: kcur, or its pairs
				ablk := s.a
				if pa != nil {
					ablk = pa[g.steps(pc)*roundUp(m, mr)+ic*ks:]
				} else {
					g.packA(op, s.a, a, lda, ic, mcur, pc, kcur, &s.cvt)
				}
				packing := pb == nil && (single || ic == 0) // B̃ panels are packed in this row block
				for jr := 0; jr < ncur; jr += nr {
					nrcur := min(nr, ncur-jr)
					var bp []float32
					switch {
					case pb != nil:
						o := g.steps(pc)*roundUp(n, nr) + (jc+jr)*ks
						bp = pb[o : o+ks*nr]
					case single:
						bp = s.b[:ks*nr]
					default:
						bp = s.b[jr*kc : jr*kc+ks*nr]
					}
					if packing {
						g.packB(op, bp, b, ldb, jc+jr, nrcur, pc, kcur, &s.cvt)
					}
					// While the kernels run on this panel, stream the source
					// of the next one toward L2, a slice per sliver.
					var next gemmRegion
					if packing && jr+nr < ncur {
						next = g.sourceB(op, ldb, jc+jr+nr, min(nr, ncur-jr-nr), pc, kcur)
					}
					slivers := (mcur + mr - 1) / mr
					for ir := 0; ir < mcur; ir += mr {
						if next.rows > 0 {
							sl := ir / mr
							r0, r1 := sl*next.rows/slivers, (sl+1)*next.rows/slivers
							if r1 > r0 {
								g.prefetch(&b[next.off+r0*ldb], ldb, r1-r0, next.width)
							}
						}
						mrcur := min(mr, mcur-ir)
						ap := ablk[ir*ks : ir*ks+ks*mr]
						ci := (ic+ir)*ldc + jc + jr
						if ep != nil && pc+kcur == k {
							g.tileScale(kern, mrcur, nrcur, ks, ap, bp, s.tile, c[ci:], ldc, ep.rs[ic+ir:], ep.cs[jc+jr:], bet)
							continue
						}
						g.tileStore(kern, mrcur, nrcur, ks, ap, bp, s.tile, c[ci:], ldc, alpha, bet)
					}
				}
			}
		}
	}
	putGemmScratch(s)
}

// tileStore computes one mr×nr tile and stores it to C. This is the seam for
// an epilogue (ROADMAP 2): full tiles go straight from registers to C with α
// and β; a tile narrower than NR, or every tile when viaTile is set, is
// written raw to the L1 buffer t and merged from there, as a fused epilogue
// would consume it. kern is the arch's kernel, or its session's.
func (g *gemmArch) tileStore(kern gemmKernelFunc, mr, nr, kc int, ap, bp, t, c []float32, ldc int, alpha, beta float32) {
	_ = ap[kc*g.mr-1]
	_ = bp[kc*g.nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	if nr == g.nr && !g.viaTile {
		kern(mr, kc, &ap[0], &bp[0], &c[0], ldc, alpha, beta)
		return
	}
	kern(mr, kc, &ap[0], &bp[0], &t[0], g.nr, 1, 0)
	if nr == g.nr {
		g.merge(mr, &t[0], &c[0], ldc, alpha, beta)
		return
	}
	mergeRows(mr, nr, t, g.nr, c, ldc, alpha, beta)
}

// tileScale is tileStore with the fused epilogue: the tile goes raw to the
// L1 buffer t, and the level's scaling store (or scaleRows for a tile
// narrower than NR) writes rs[i]·(cs[j]·(T + β·C)) to C.
func (g *gemmArch) tileScale(kern gemmKernelFunc, mr, nr, kc int, ap, bp, t, c []float32, ldc int, rs, cs []float32, beta float32) {
	_ = ap[kc*g.mr-1]
	_ = bp[kc*g.nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	_ = rs[mr-1]
	_ = cs[nr-1]
	kern(mr, kc, &ap[0], &bp[0], &t[0], g.nr, 1, 0)
	if nr == g.nr {
		g.scale(mr, &t[0], &c[0], ldc, &rs[0], &cs[0], beta)
		return
	}
	scaleRows(mr, nr, t, g.nr, c, ldc, rs, cs, beta)
}

// mergeRows stores C ← α·T + β·C for the mr×nr tile T (row stride ldt); β
// = 0 ignores C's old contents.
func mergeRows(mr, nr int, t []float32, ldt int, c []float32, ldc int, alpha, beta float32) {
	for i := 0; i < mr; i++ {
		ti := t[i*ldt : i*ldt+nr]
		ci := c[i*ldc : i*ldc+nr]
		if beta == 0 {
			for j, v := range ti {
				ci[j] = alpha * v
			}
			continue
		}
		for j, v := range ti {
			ci[j] = alpha*v + beta*ci[j]
		}
	}
}

// gemmRegion is rows of width floats from offset off of an operand, row
// stride its leading dimension.
type gemmRegion struct{ off, rows, width int }

// sourceB is where packB reads the panel of columns j0..j0+w of op(B).
func (g *gemmArch) sourceB(op gemmOp, ldb, j0, w, p0, kc int) gemmRegion {
	if op == gemmOpNT {
		return gemmRegion{off: j0*ldb + p0, rows: w, width: kc}
	}
	return gemmRegion{off: p0*ldb + j0, rows: kc, width: w}
}

// packA packs rows i0..i0+mcur of op(A), depth p0..p0+kc, into slivers of
// MR rows: dst[s·kc·MR + p·MR + i] = op(A)[i0 + s·MR + i][p0 + p]. The last
// sliver's unused rows are left as they are (the kernel never reads them).
func (g *gemmArch) packA(op gemmOp, dst, a []float32, lda, i0, mcur, p0, kc int, cvt *[]float32) {
	mr := g.mr
	switch g.prec {
	case gemmBF16Pair:
		g.packPairA(op, dst, a, lda, i0, mcur, p0, kc, cvt)
		return
	case gemmBF16Tile:
		g.packTileA(op, dst, a, lda, i0, mcur, p0, kc, cvt)
		return
	}
	if g.prec == gemmBF16Round {
		defer g.round(dst[:roundUp(mcur, mr)*kc])
	}
	for ir := 0; ir < mcur; ir += mr {
		rows := min(mr, mcur-ir)
		d := dst[ir*kc : ir*kc+kc*mr]
		if op == gemmOpTN { // op(A)[i][p] = A[p][i]
			packCopy(g.copyA, d, mr, a[p0*lda+i0+ir:], lda, rows, kc)
		} else {
			g.packTrans(d, mr, a[(i0+ir)*lda+p0:], lda, rows, kc)
		}
	}
}

// packB packs columns j0..j0+w of op(B), depth p0..p0+kc, into one panel
// dst[p·NR + j] = op(B)[p0 + p][j0 + j]. Columns j ≥ w keep whatever an
// earlier pack left there (zeros in a fresh buffer, else finite or not
// values of earlier operands): the kernel computes them in lanes of their
// own, and only tiles' first w columns are ever stored.
func (g *gemmArch) packB(op gemmOp, dst, b []float32, ldb, j0, w, p0, kc int, cvt *[]float32) {
	switch g.prec {
	case gemmBF16Pair:
		g.packPairB(op, dst, b, ldb, j0, w, p0, kc, cvt)
		return
	case gemmBF16Tile:
		g.packTileB(op, dst, b, ldb, j0, w, p0, kc, cvt)
		return
	case gemmBF16Round:
		defer g.round(dst[:kc*g.nr])
	}
	if op == gemmOpNT { // op(B)[p][j] = B[j][p]
		g.packTrans(dst, g.nr, b[j0*ldb+p0:], ldb, w, kc)
	} else {
		packCopy(g.copyB, dst, g.nr, b[p0*ldb+j0:], ldb, w, kc)
	}
}

// packTrans sets dst[p·ld + x] = src[x·lds + p] for x < w, p < kc: 8, 4 and
// 2 rows at a time by the level's packT routines, the rest in Go.
func (g *gemmArch) packTrans(dst []float32, ld int, src []float32, lds, w, kc int) {
	kc8 := kc / 8
	x := 0
	if kc8 > 0 {
		_ = dst[(8*kc8-1)*ld+w-1]
		for ; x+8 <= w; x += 8 {
			_ = src[(x+7)*lds+8*kc8-1]
			g.packT8(&dst[x], ld, &src[x*lds], lds, kc8)
		}
		if x+4 <= w {
			_ = src[(x+3)*lds+8*kc8-1]
			g.packT4(&dst[x], ld, &src[x*lds], lds, kc8)
			x += 4
		}
		if x+2 <= w {
			_ = src[(x+1)*lds+8*kc8-1]
			g.packT2(&dst[x], ld, &src[x*lds], lds, kc8)
			x += 2
		}
	}
	for ; x < w; x++ { // rows the packT routines left
		row := src[x*lds : x*lds+kc]
		for p, v := range row[:8*kc8] {
			dst[p*ld+x] = v
		}
	}
	for p := 8 * kc8; p < kc; p++ { // columns the packT routines left
		d := dst[p*ld : p*ld+w]
		for x := range d {
			d[x] = src[x*lds+p]
		}
	}
}

// packCopy sets dst[p·ld + x] = src[p·lds + x] for x < w, p < kc, using
// the level's copy full (w = ld) and Go's copy for narrower edges.
func packCopy(full gemmPackCFunc, dst []float32, ld int, src []float32, lds, w, kc int) {
	if w == ld {
		_ = dst[kc*ld-1]
		_ = src[(kc-1)*lds+w-1]
		full(&dst[0], ld, &src[0], lds, kc)
		return
	}
	for p := 0; p < kc; p++ {
		copy(dst[p*ld:p*ld+w], src[p*lds:p*lds+w])
	}
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }
