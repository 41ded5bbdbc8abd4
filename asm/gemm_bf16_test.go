package asm

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/marginloss/marginloss/internal/simd"
)

// bf16Variant is one bfloat16 driver under test.
type bf16Variant struct {
	name string
	g    *gemmArch
}

// bf16Variants lists every bf16 driver this build and CPU can run: the Go
// ones, small-blocked so that depth passes, row and column blocks and
// partial slivers and panels show at small shapes, each level's own, and
// the arch files' alternates (bf16Alternates).
func bf16Variants(t testing.TB) []bf16Variant {
	vs := []bf16Variant{
		{"go-round3×5", newGemmArch(gemmArch{mr: 3, nr: 5, kc: 32, kcDeep: 16, mc: 9, nc: 15,
			kernel: gemmKernelGeneric(3, 5), prec: gemmBF16Round})},
		{"go-pair4×8", newGemmArch(gemmArch{mr: 4, nr: 8, kc: 32, kcDeep: 16, mc: 12, nc: 24,
			kernel: gemmKernelBF16Generic(4, 8), prec: gemmBF16Pair})},
		{"go-tile4×8", newGemmArch(gemmArch{mr: 4, nr: 8, kc: 64, kcDeep: 32, mc: 12, nc: 24,
			kernel: gemmKernelBF16TileGeneric(4, 8), prec: gemmBF16Tile})},
		{"go-tile3×5-via", newGemmArch(gemmArch{mr: 3, nr: 5, kc: 96, kcDeep: 64, mc: 9, nc: 15,
			kernel: gemmKernelBF16TileGeneric(3, 5), prec: gemmBF16Tile, viaTile: true})},
	}
	for _, l := range simd.Usable() {
		if g := bf16Drivers[l]; g != nil {
			vs = append(vs, bf16Variant{l.String(), g})
		}
	}
	names := make([]string, 0, len(bf16Alternates))
	for n := range bf16Alternates {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		vs = append(vs, bf16Variant{n, bf16Alternates[n]})
	}
	return vs
}

// roundedCopy is x with every element rounded to bf16.
func roundedCopy(x []float32) []float32 {
	y := append([]float32(nil), x...)
	roundBF16Generic(y)
	return y
}

// TestBF16Bits checks the conversion against its definition (round to
// nearest even of the top 16 bits, subnormals to signed zero, NaN quiet)
// on edge patterns and random ones.
func TestBF16Bits(t *testing.T) {
	cases := map[uint32]uint16{
		0x3f800000: 0x3f80, // 1
		0x3f808000: 0x3f80, // tie, even stays
		0x3f818000: 0x3f82, // tie, odd rounds up
		0x3f808001: 0x3f81, // above the tie
		0x3f807fff: 0x3f80, // below
		0x7f7fffff: 0x7f80, // largest finite rounds to +Inf
		0xff800000: 0xff80, // −Inf
		0x00000001: 0x0000, // subnormal → +0
		0x807fffff: 0x8000, // subnormal → −0
		0x00800000: 0x0080, // smallest normal
		0x7fc00000: 0x7fc0, // quiet NaN
		0x7f800001: 0x7fc0, // signalling NaN made quiet
		0xffff0000: 0xffff,
	}
	for in, want := range cases {
		if got := BF16Bits(math.Float32frombits(in)); got != want {
			t.Errorf("BF16Bits(%#08x) = %#04x, want %#04x", in, got, want)
		}
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 100000; i++ {
		x := math.Float32frombits(r.Uint32())
		b := BF16Bits(x)
		y := math.Float32frombits(uint32(b) << 16)
		if x != x {
			if y == y {
				t.Fatalf("BF16Bits(NaN %#08x) = %#04x, not a NaN", math.Float32bits(x), b)
			}
			continue
		}
		if math.Abs(float64(x)) < 0x1p-126 {
			if y != 0 || math.Signbit(float64(y)) != math.Signbit(float64(x)) {
				t.Fatalf("subnormal %v → %v", x, y)
			}
			continue
		}
		// y is the nearest bf16; |x − y| ≤ half an ulp of bf16 (2⁻⁹ relative).
		lo := math.Float32frombits(math.Float32bits(y) - 0x10000)
		hi := math.Float32frombits(math.Float32bits(y) + 0x10000)
		d := math.Abs(float64(x) - float64(y))
		if !math.IsInf(float64(y), 0) && (d > math.Abs(float64(x)-float64(lo)) || d > math.Abs(float64(x)-float64(hi))) {
			t.Fatalf("BF16Bits(%v) = %v is not the nearest (%v, %v)", x, y, lo, hi)
		}
	}
}

// bf16Reference is gemmReference on the rounded operands, with the
// subnormal slack (2⁻¹²⁶ per term) added to each bound.
func bf16Reference(tc gemmCase, a, b, c0 []float32) (want, bound []float64) {
	want, bound = gemmReference(tc, roundedCopy(a), roundedCopy(b), c0)
	for i := range bound {
		bound[i] += float64(tc.k+2) * 0x1p-126
	}
	return want, bound
}

// TestGemmBF16 checks every bf16 driver, for NT, NN and TN, against the
// float64 product of the rounded operands within the GEMM bound, on guarded
// operands (flush against a PROT_NONE page at their end or their start),
// with strides, every α/β class, odd depths (a pair's high half 0) and the
// head's shapes.
func TestGemmBF16(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	var shapes [][3]int
	for _, m := range []int{1, 2, 5, 12, 13, 25} {
		for _, n := range []int{1, 7, 16, 33, 65} {
			for _, k := range []int{1, 2, 7, 8, 17, 40, 67} {
				shapes = append(shapes, [3]int{m, n, k})
			}
		}
	}
	shapes = append(shapes, [3]int{256, 96, 512}, [3]int{64, 512, 100}, [3]int{100, 512, 256}, [3]int{30, 50, 1100})
	o := newGemmOperands(t, 300*1200, 600*1200, 300*600)
	vs := bf16Variants(t)
	for si, s := range shapes {
		for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
			ab := gemmAlphaBeta[(si+int(op))%len(gemmAlphaBeta)]
			tc := gemmCase{op: op, m: s[0], n: s[1], k: s[2], alpha: ab[0], beta: ab[1]}
			_, ac, _, bc := tc.dims()
			tc.lda, tc.ldb, tc.ldc = ac+si%3, bc+(si/3)%2, tc.n+si%4
			head := si%2 == 1
			o.fill(r, tc, head)
			o.want, o.bound = bf16Reference(tc, o.a, o.b, o.c0)
			for _, v := range vs {
				o.run(t, v.name, func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
					v.g.gemm(tc.op, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
				}, tc, head)
			}
		}
	}
}

// TestGemmBF16Entries checks the exported entries at every level: GemmNTBF16,
// GemmNNBF16 and GemmTNBF16 within the bound, and the packed ones
// (PackBF16 with GemmNTPacked, GemmNTPackedScaled and GemmTNPacked)
// bitwise equal to GemmNTBF16 and GemmTNBF16 at the same level (and the
// scaled one to rs·(cs·p)); BF16Native only where the level is the one
// with bf16 instructions.
func TestGemmBF16Entries(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	var pa PackedA
	var pb PackedB
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: BF16Native = %v", l, BF16Native())
		if BF16Native() && l != bf16Native.level {
			t.Errorf("%v: BF16Native at a level without the bf16 driver", l)
		}
		for _, s := range [][3]int{{256, 100, 512}, {5, 3, 7}, {13, 40, 31}, {1, 1, 1}, {3, 4, 0}} {
			m, n, k := s[0], s[1], s[2]
			for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
				tc := gemmCase{op: op, m: m, n: n, k: k, alpha: 0.5, beta: 1}
				_, ac, _, bc := tc.dims()
				tc.lda, tc.ldb, tc.ldc = ac+1, bc+2, n+3
				ar, _, br, _ := tc.dims()
				a, b := randGemm(r, span(ar, ac, tc.lda)), randGemm(r, span(br, bc, tc.ldb))
				c0 := randGemm(r, span(m, n, tc.ldc))
				want, bound := bf16Reference(tc, a, b, c0)
				got := append([]float32(nil), c0...)
				f := [...]gemmFunc{GemmNTBF16, GemmNNBF16, GemmTNBF16}[op]
				f(m, n, k, tc.alpha, a, tc.lda, b, tc.ldb, tc.beta, got, tc.ldc)
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						if d := math.Abs(float64(got[i*tc.ldc+j]) - want[i*n+j]); !(d <= bound[i*n+j]) {
							t.Fatalf("%v %v: C[%d][%d] = %v, want %v ± %v", l, tc, i, j, got[i*tc.ldc+j], want[i*n+j], bound[i*n+j])
						}
					}
				}
				var packed []float32
				switch op {
				case gemmOpNT:
					pa.PackBF16(m, k, a, tc.lda)
					packed = append([]float32(nil), c0...)
					GemmNTPacked(n, tc.alpha, &pa, b, tc.ldb, tc.beta, packed, tc.ldc)
					rs, cs := randGemm(r, m), randGemm(r, n)
					p := make([]float32, m*n)
					GemmNTPacked(n, 1, &pa, b, tc.ldb, 0, p, n)
					sc := make([]float32, m*n)
					GemmNTPackedScaled(n, &pa, b, tc.ldb, rs, cs, sc, n)
					for i := range sc {
						if w := rs[i/max(n, 1)] * (cs[i%n] * p[i]); math.Float32bits(w) != math.Float32bits(sc[i]) {
							t.Fatalf("%v scaled m=%d n=%d k=%d: %v, want rs·(cs·p) = %v", l, m, n, k, sc[i], w)
						}
					}
				case gemmOpTN:
					pb.PackBF16(k, n, b, tc.ldb)
					packed = append([]float32(nil), c0...)
					GemmTNPacked(m, tc.alpha, a, tc.lda, &pb, tc.beta, packed, tc.ldc)
				}
				if packed != nil {
					if i := firstBitDiff(got, packed); i >= 0 {
						t.Fatalf("%v %v: packed c[%d] = %v, unpacked %v", l, tc, i, packed[i], got[i])
					}
				}
			}
		}
		restore()
	}
}

// TestGemmBF16PairRoutines checks each level's pair conversion bitwise
// against gemmPairGeneric (widths 1..2·NR+1, offsets 0..15, guarded), and
// each pair kernel against gemmKernelBF16Generic within twice the GEMM
// bound over the 2·kc products: both add the same exact products, but
// VDPBF16PS's intermediate rounding is its vendor's (on the Sapphire
// Rapids-class Xeon of 2026-12-01, 98% of the elements were bitwise the
// twin's, which adds the odd product, then the even one, each rounded),
// and it flushes subnormal sums. The test logs the bitwise share.
func TestGemmBF16PairRoutines(t *testing.T) {
	r := rand.New(rand.NewSource(18))
	for _, v := range bf16Variants(t) {
		g := v.g
		if g.prec != gemmBF16Pair {
			continue
		}
		gb := newGuardBuf(t, 4096)
		for w := 1; w <= 2*g.nr+1; w++ {
			for kc2 := 0; kc2 <= 5; kc2++ {
				off := (w + kc2) % 16
				lds, ldd := w+off%3, w+off%5
				src := gb.tail(span(2*kc2, w, lds), 0)
				for i := range src {
					src[i] = float32(r.NormFloat64())
				}
				if len(src) > 3 {
					src[1], src[2], src[3] = float32(math.Inf(1)), float32(math.NaN()), 1e-40
				}
				want := make([]float32, span(kc2, w, ldd)+off)
				got := append([]float32(nil), want...)
				if kc2 > 0 {
					gemmPairGeneric(&want[off], ldd, &src[0], lds, kc2, w)
					g.pair(&got[off], ldd, &src[0], lds, kc2, w)
				}
				if i := firstBitDiff(want, got); i >= 0 {
					t.Fatalf("%s pair w=%d kc2=%d: word %d = %#08x, want %#08x", v.name, w, kc2, i,
						math.Float32bits(got[i]), math.Float32bits(want[i]))
				}
			}
		}
		checkBF16Kernel(t, r, v, gemmKernelBF16Generic(g.mr, g.nr), func(i, q, _ int) int { return q*g.mr + i },
			func(mr, kc int) bool { return true }, []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 33, 256},
			func(int) int { return g.nr + 3 })
	}
}

// checkBF16Kernel checks v's micro-kernel against twin, for every mr in
// 1..MR that run(mr, kc) allows, each depth in kcs and every α/β class
// (C's row stride ldc(class)), within twice the GEMM bound over the 2·kc
// exact products: each element of C within (2·kc+9)·2⁻²³·(|α|·Σ|products| +
// |β·c|) of the twin's, and nothing written between C's rows. at(i, q, kc)
// is where the sliver holds word (i, q). It logs the bitwise share.
func checkBF16Kernel(t *testing.T, r *rand.Rand, v bf16Variant, twin gemmKernelFunc, at func(i, q, kc int) int,
	run func(mr, kc int) bool, kcs []int, ldc func(class int) int) {
	t.Helper()
	g := v.g
	exact, total := 0, 0
	for mr := 1; mr <= g.mr; mr++ {
		for _, kc := range kcs {
			if !run(mr, kc) {
				continue
			}
			a := make([]float32, kc*g.mr+1)
			b := make([]float32, kc*g.nr+1)
			for i := range a {
				a[i] = pairWord(float32(r.NormFloat64()), float32(r.NormFloat64()))
			}
			for i := range b {
				b[i] = pairWord(float32(r.NormFloat64()), float32(r.NormFloat64()))
			}
			for ai, ab := range gemmAlphaBeta {
				ldc := ldc(ai)
				c0 := randGemm(r, (mr-1)*ldc+g.nr)
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				twin(mr, kc, &a[0], &b[0], &want[0], ldc, ab[0], ab[1])
				g.kernel(mr, kc, &a[0], &b[0], &got[0], ldc, ab[0], ab[1])
				for i := 0; i < mr; i++ {
					for j := 0; j < g.nr; j++ {
						var abs float64
						for q := 0; q < kc; q++ {
							x, y := math.Float32bits(a[at(i, q, kc)]), math.Float32bits(b[q*g.nr+j])
							abs += math.Abs(float64(math.Float32frombits(x&0xffff0000)) * float64(math.Float32frombits(y&0xffff0000)))
							abs += math.Abs(float64(math.Float32frombits(x<<16)) * float64(math.Float32frombits(y<<16)))
						}
						bound := float64(2*kc+9)*0x1p-23*(math.Abs(float64(ab[0]))*abs+math.Abs(float64(ab[1]*c0[i*ldc+j]))) + 1e-37
						w, gv := want[i*ldc+j], got[i*ldc+j]
						total++
						if math.Float32bits(w) == math.Float32bits(gv) {
							exact++
						}
						if !(math.Abs(float64(w)-float64(gv)) <= 2*bound) {
							t.Fatalf("%s kernel mr=%d kc=%d α=%v β=%v: C[%d][%d] = %v, twin %v", v.name, mr, kc, ab[0], ab[1], i, j, gv, w)
						}
					}
					for j := g.nr; j < ldc && i < mr-1; j++ { // between rows: untouched
						if math.Float32bits(got[i*ldc+j]) != math.Float32bits(c0[i*ldc+j]) {
							t.Fatalf("%s kernel mr=%d kc=%d: wrote C[%d][%d] past the tile", v.name, mr, kc, i, j)
						}
					}
				}
			}
		}
	}
	t.Logf("%s: kernel bitwise equal to its twin in %d of %d elements", v.name, exact, total)
}

// TestGemmBF16TileRoutines checks each tile driver's (gemmBF16Tile) row
// conversion bitwise against gemmCvtGeneric (lengths 0..96, offsets
// 0..15, guarded, with ±Inf, NaN and subnormals), and its kernel against
// gemmKernelBF16TileGeneric within twice the GEMM bound over the 2·kc
// products, for every mr, depths 16..512 pairs, every α/β class and C's
// row strides of 32 and more (the kernel stores whole tiles itself for
// α = 1, β ∈ {0, 1}); TDPBF16PS's intermediate rounding is Intel's and
// flushes subnormals, so the two agree within the bound, and the test logs
// the bitwise share. Where no tile driver runs (no AMX, or the OS refused
// it) only the Go twin's variants run, and the test says so.
func TestGemmBF16TileRoutines(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	if bf16Alternates["avx512-amx"] == nil {
		t.Logf("no AMX driver on this CPU and OS (simd.HasAMXBF16 = %v): only the Go tile twins run", simd.HasAMXBF16())
	}
	for _, v := range bf16Variants(t) {
		g := v.g
		if g.prec != gemmBF16Tile {
			continue
		}
		gb := newGuardBuf(t, 4096)
		for n := 0; n <= 96; n++ {
			off := n % 16
			src := gb.tail(n+off, 0)[off:]
			for i := range src {
				src[i] = float32(r.NormFloat64())
			}
			if n > 5 {
				src[1], src[2], src[3], src[4] = float32(math.Inf(-1)), float32(math.NaN()), 1e-40, -1e-39
			}
			want := make([]float32, (n+1)/2+off)
			got := append([]float32(nil), want...)
			g.cvtRow(got[off:], src)
			for q := 0; q < (n+1)/2; q++ {
				hi := float32(0)
				if 2*q+1 < n {
					hi = src[2*q+1]
				}
				want[off+q] = pairWord(src[2*q], hi)
			}
			if i := firstBitDiff(want, got); i >= 0 {
				t.Fatalf("%s cvtRow n=%d: word %d = %#08x, want %#08x", v.name, n, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
			}
		}
		twin := gemmKernelBF16TileGeneric(g.mr, g.nr)
		at := func(i, q, kc int) int { return i*kc + q }
		pick := func(mr, kc int) bool { return mr%7 == 1 || mr == g.mr || kc <= 48 }
		ldc := func(class int) int { return g.nr + 3*(class%2) }
		checkBF16Kernel(t, r, v, twin, at, pick, []int{16, 32, 48, 256, 512}, ldc)
	}
}

// TestGemmBF16Preempted: GEMMs at every level on many goroutines at once,
// while the scheduler preempts them (a GC loop, more goroutines than
// threads, GOMAXPROCS above the CPUs), give bitwise the results of one
// goroutine alone. The AMX driver keeps its tile configuration across one
// call's kernels on a goroutine locked to its thread (gemmAMXSession): a
// goroutine that moved threads mid-call would fault or compute with
// another thread's tiles.
func TestGemmBF16Preempted(t *testing.T) {
	r := rand.New(rand.NewSource(23))
	const m, n, k = 70, 96, 600 // two depth passes at the AMX driver's kc
	a, b := randGemm(r, m*k), randGemm(r, n*k)
	rs, cs := randGemm(r, m), randGemm(r, n)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	for _, l := range simd.Usable() {
		restore, _ := simd.Force(l)
		if g := bf16Drivers[l]; g != nil && g.session != nil {
			t.Logf("%v: the driver runs its kernels in a session", l)
		}
		run := func(c []float32, pa *PackedA) {
			GemmNTBF16(m, n, k, 1, a, k, b, k, 0, c[:m*n], n)
			GemmNNBF16(m, n, k, 1, a, k, b, n, 1, c[:m*n], n)
			pa.PackBF16(m, k, a, k)
			GemmNTPackedScaled(n, pa, b, k, rs, cs, c[m*n:], n)
		}
		want := make([]float32, 2*m*n)
		run(want, new(PackedA))
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					runtime.GC()
				}
			}
		}()
		errs := make(chan error, 8)
		for w := 0; w < 8; w++ {
			go func() {
				c, pa := make([]float32, 2*m*n), new(PackedA)
				for it := 0; it < 12; it++ {
					clear(c)
					run(c, pa)
					if i := firstBitDiff(want, c); i >= 0 {
						errs <- fmt.Errorf("%v: goroutine %d call %d: C[%d] = %v, alone %v", l, w, it, i, c[i], want[i])
						return
					}
				}
				errs <- nil
			}()
		}
		for w := 0; w < 8; w++ {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		close(stop)
		<-done
		restore()
	}
}

// TestGemmBF16NoAllocs: the bf16 entries allocate nothing in steady state.
func TestGemmBF16NoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(19))
	m, n, k := 64, 200, 130
	a, b, c := randGemm(r, m*k), randGemm(r, n*k), make([]float32, m*n)
	var pa PackedA
	var pb PackedB
	rs, cs := randGemm(r, m), randGemm(r, n)
	for _, l := range simd.Usable() {
		restore, _ := simd.Force(l)
		f := func() {
			GemmNTBF16(m, n, k, 1, a, k, b, k, 0, c, n)
			GemmNNBF16(m, n, k, 1, a, k, b, n, 1, c, n)
			GemmTNBF16(m, n, k, 1, a, m, b, n, 0, c, n)
			pa.PackBF16(m, k, a, k)
			GemmNTPackedScaled(n, &pa, b, k, rs, cs, c, n)
			pb.PackBF16(k, n, b, n)
			GemmTNPacked(m, 1, a, m, &pb, 0, c, n)
		}
		f()
		if got := testing.AllocsPerRun(5, f); got != 0 {
			t.Errorf("%v: %v allocations per run", l, got)
		}
		restore()
	}
}

func (v bf16Variant) String() string { return fmt.Sprintf("%s %d×%d", v.name, v.g.mr, v.g.nr) }

// TestRoundBF16Routines: each level's in-place rounding of its packs is
// bitwise roundBF16Generic on random bit patterns (NaN, Inf, subnormals
// included), lengths 0..40 and offsets 0..15, flush against a guard page.
func TestRoundBF16Routines(t *testing.T) {
	r := rand.New(rand.NewSource(20))
	gb := newGuardBuf(t, 64)
	specials := []uint32{0, 0x80000000, 1, 0x807fffff, 0x7f800000, 0xff800000, 0x7f800001, 0xffc00001, 0x3f808000, 0x3f818000, 0x7f7fffff}
	for _, v := range bf16Variants(t) {
		if v.g.prec != gemmBF16Round {
			continue
		}
		for n := 0; n <= 40; n++ {
			for off := 0; off < 16; off++ {
				x := gb.tail(n, 0) // flush against the trailing guard page
				if off > 0 {
					x = gb.head(n, off) // from the leading one, off floats in
				}
				for i := range x {
					b := r.Uint32()
					if i%3 == 0 {
						b = specials[r.Intn(len(specials))]
					}
					x[i] = math.Float32frombits(b)
				}
				want := append([]float32(nil), x...)
				roundBF16Generic(want)
				v.g.round(x)
				for i := range x {
					if math.Float32bits(x[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d: x[%d] = %#08x, want %#08x", v.name, n, i, math.Float32bits(x[i]), math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}

// TestGemmKernelGo4x16: the generic bf16 driver's kernel is bitwise
// gemmKernelGeneric(4, 16) for every mr, depths and α/β.
func TestGemmKernelGo4x16(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	twin := gemmKernelGeneric(4, 16)
	for mr := 1; mr <= 4; mr++ {
		for _, kc := range []int{0, 1, 2, 3, 7, 16, 33, 256} {
			a, b := randGemm(r, kc*4+1), randGemm(r, kc*16+1)
			for _, ab := range gemmAlphaBeta {
				ldc := 19
				c0 := randGemm(r, (mr-1)*ldc+16)
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				twin(mr, kc, &a[0], &b[0], &want[0], ldc, ab[0], ab[1])
				gemmKernelGo4x16(mr, kc, &a[0], &b[0], &got[0], ldc, ab[0], ab[1])
				if i := firstBitDiff(want, got); i >= 0 {
					t.Fatalf("mr=%d kc=%d α=%v β=%v: c[%d] = %v, twin %v", mr, kc, ab[0], ab[1], i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkGemmKernelBF16 times each native bf16 micro-kernel alone, as
// the driver runs it at the head's per-tile shapes (N = 256, a class tile
// of 128, D = 512): the depths of its three GEMMs (NT 512, TN 256 and NN
// 128 k values), over the slivers of one A block against one B panel, the
// operands packed and cache-resident, inside the driver's session where it
// has one (AMX: one tile configuration for the run). It reports GFLOP/s
// and, as peak-frac, the fraction of the kernel's own peak (AMX: the tile
// peak loop; VDPBF16PS: the bf16 dot peak loop), timed in the same run:
//
//	go test ./asm -run '^$' -bench GemmKernelBF16 -benchtime 2000x -count 3
func BenchmarkGemmKernelBF16(b *testing.B) {
	type kern struct {
		name string
		g    *gemmArch
		peak func(iters int) (int, bool)
	}
	var ks []kern
	if g := bf16Alternates["avx512-amx"]; g != nil {
		ks = append(ks, kern{"avx512-amx", g, amxPeakLoop})
	}
	if g := bf16Alternates["avx512-pair"]; g != nil {
		ks = append(ks, kern{"avx512-pair", g, func(n int) (int, bool) { return bf16PeakLoop(simd.AVX512, n) }})
	}
	if g := bf16Drivers[simd.NEON]; g != nil && g.prec == gemmBF16Pair {
		ks = append(ks, kern{"neon-bfdot", g, func(n int) (int, bool) { return bf16PeakLoop(simd.NEON, n) }})
	}
	r := rand.New(rand.NewSource(29))
	for _, k := range ks {
		g := k.g
		for _, kc := range []int{512, 256, 128} {
			steps := g.steps(kc)
			slivers := 256 / g.mr
			a := randGemm(r, slivers*steps*g.mr)
			bp := randGemm(r, steps*g.nr)
			c := make([]float32, 256*g.nr)
			b.Run(fmt.Sprintf("%s/k=%d", k.name, kc), func(b *testing.B) {
				run := func() {
					kern := g.kernel
					if se := g.session; se != nil {
						se.enter()
						defer se.exit()
						kern = se.kernel
					}
					for s := 0; s < slivers; s++ {
						kern(g.mr, steps, &a[s*steps*g.mr], &bp[0], &c[s*g.mr*g.nr], g.nr, 1, 0)
					}
				}
				run()
				b.ResetTimer()
				for b.Loop() {
					run()
				}
				sec := b.Elapsed().Seconds()
				gf := 2 * float64(slivers*g.mr*g.nr*kc) * float64(b.N) / sec / 1e9
				b.ReportMetric(gf, "GFLOP/s")
				const iters = 1 << 16
				start := time.Now()
				if flops, ok := k.peak(iters); ok {
					peak := float64(flops) * iters / time.Since(start).Seconds() / 1e9
					b.ReportMetric(gf/peak, "peak-frac")
				}
			})
		}
	}
}
