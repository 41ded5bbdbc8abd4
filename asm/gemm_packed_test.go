package asm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// packedShapes cover single and several row blocks, column blocks and depth
// passes of the small-blocked drivers, and partial slivers and panels.
func packedShapes() [][3]int {
	var s [][3]int
	for _, m := range []int{1, 2, 5, 13, 40} {
		for _, n := range []int{1, 7, 33, 64} {
			for _, k := range []int{1, 8, 17, 64} {
				s = append(s, [3]int{m, n, k})
			}
		}
	}
	return s
}

// TestPackedDriverBitwise checks that a driver fed operands packed once
// (packAllA for NT's A, packAllB for TN's B) gives bitwise what it gives
// packing them itself, for the small-blocked Go-kernel drivers (several
// passes, row and column blocks) and each level's own driver.
func TestPackedDriverBitwise(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	type arch struct {
		name string
		g    *gemmArch
	}
	var arches []arch
	for _, s := range [][2]int{{4, 8}, {3, 5}} {
		arches = append(arches, arch{fmt.Sprintf("go%d×%d", s[0], s[1]), newGemmArch(gemmArch{
			mr: s[0], nr: s[1], kc: 32, kcDeep: 16, mc: 3 * s[0], nc: 3 * s[1],
			kernel: gemmKernelGeneric(s[0], s[1]),
		})})
	}
	for _, l := range simd.Usable() {
		if g, ok := gemmDrivers[l]; ok {
			arches = append(arches, arch{l.String(), g})
		}
	}
	var abuf, bbuf []float32
	for _, ar := range arches {
		for _, s := range packedShapes() {
			m, n, k := s[0], s[1], s[2]
			a, b := randGemm(r, m*k+3), randGemm(r, n*k+3) // A m×k (NT) or k×m (TN)
			for _, beta := range []float32{0, 0.5} {
				c0 := randGemm(r, m*n)
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				ar.g.gemm(gemmOpNT, m, n, k, 1.5, a, k, b, k, beta, want, n)
				pa := ar.g.packAllA(&abuf, gemmOpNT, m, k, a, k)
				ar.g.gemmPre(gemmOpNT, m, n, k, 1.5, nil, 0, b, k, beta, got, n, pa, nil, nil)
				if i := firstBitDiff(want, got); i >= 0 {
					t.Fatalf("%s NT m=%d n=%d k=%d β=%g: c[%d] = %v packed, %v not", ar.name, m, n, k, beta, i, got[i], want[i])
				}
				want, got = append(want[:0], c0...), append(got[:0], c0...)
				ar.g.gemm(gemmOpTN, m, n, k, 1.5, a, m, b, n, beta, want, n)
				pb := ar.g.packAllB(&bbuf, gemmOpTN, k, n, b, n)
				ar.g.gemmPre(gemmOpTN, m, n, k, 1.5, a, m, nil, 0, beta, got, n, nil, pb, nil)
				if i := firstBitDiff(want, got); i >= 0 {
					t.Fatalf("%s TN m=%d n=%d k=%d β=%g: c[%d] = %v packed, %v not", ar.name, m, n, k, beta, i, got[i], want[i])
				}
			}
		}
	}
}

func firstBitDiff(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// TestGemmPacked checks the public entries at every level against GemmNT
// and GemmTN at that level: bitwise when m·n > 16, within the documented
// GEMM bound (against the float64 reference) below; including the
// head's shapes, strided operands, and repacking a smaller shape into the
// same PackedA.
func TestGemmPacked(t *testing.T) {
	r := rand.New(rand.NewSource(32))
	shapes := append(packedShapes(), [3]int{256, 128, 512}, [3]int{300, 40, 700}, [3]int{3, 5, 1})
	var pa PackedA
	var pb PackedB
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shapes {
			m, n, k := s[0], s[1], s[2]
			lda, ldb, ldc := k+1, k+2, n+3
			a, b := randGemm(r, m*lda), randGemm(r, n*ldb)
			c0 := randGemm(r, m*ldc)
			want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
			GemmNT(m, n, k, 0.75, a, lda, b, ldb, 0.5, want, ldc)
			pa.Pack(m, k, a, lda)
			if pa.Rows() != m || pa.Cols() != k {
				t.Fatalf("%v: PackedA is %d×%d, want %d×%d", l, pa.Rows(), pa.Cols(), m, k)
			}
			GemmNTPacked(n, 0.75, &pa, b, ldb, 0.5, got, ldc)
			checkPacked(t, l, "NT", m, n, k, want, got, func(i, j int) (float64, float64) {
				var s, abs float64
				for p := 0; p < k; p++ {
					v := float64(a[i*lda+p]) * float64(b[j*ldb+p])
					s, abs = s+v, abs+math.Abs(v)
				}
				return 0.75*s + 0.5*float64(c0[i*ldc+j]), 0.75*abs + 0.5*math.Abs(float64(c0[i*ldc+j]))
			}, ldc)

			// TN: A is k×m, B k×n
			lda, ldb = m+1, n+2
			a, b = randGemm(r, k*lda), randGemm(r, k*ldb)
			want, got = append(want[:0], c0...), append(got[:0], c0...)
			GemmTN(m, n, k, 0.75, a, lda, b, ldb, 0.5, want, ldc)
			pb.Pack(k, n, b, ldb)
			if pb.Rows() != k || pb.Cols() != n {
				t.Fatalf("%v: PackedB is %d×%d, want %d×%d", l, pb.Rows(), pb.Cols(), k, n)
			}
			GemmTNPacked(m, 0.75, a, lda, &pb, 0.5, got, ldc)
			checkPacked(t, l, "TN", m, n, k, want, got, func(i, j int) (float64, float64) {
				var s, abs float64
				for p := 0; p < k; p++ {
					v := float64(a[p*lda+i]) * float64(b[p*ldb+j])
					s, abs = s+v, abs+math.Abs(v)
				}
				return 0.75*s + 0.5*float64(c0[i*ldc+j]), 0.75*abs + 0.5*math.Abs(float64(c0[i*ldc+j]))
			}, ldc)
		}
		restore()
	}
}

func checkPacked(t *testing.T, l simd.Level, op string, m, n, k int, want, got []float32, ref func(i, j int) (float64, float64), ldc int) {
	t.Helper()
	if m*n > gemmTiny {
		if i := firstBitDiff(want, got); i >= 0 {
			t.Fatalf("%v %s m=%d n=%d k=%d: c[%d] = %v packed, %v unpacked", l, op, m, n, k, i, got[i], want[i])
		}
		return
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			v, abs := ref(i, j)
			bound := float64(k+9)*0x1p-23*abs + 1e-30
			if d := math.Abs(float64(got[i*ldc+j]) - v); d > bound {
				t.Fatalf("%v %s m=%d n=%d k=%d: c[%d][%d] = %v, want %v ± %.3g", l, op, m, n, k, i, j, got[i*ldc+j], v, bound)
			}
		}
	}
	for i := range want { // the padding columns stay as they were
		if i%ldc >= n && math.Float32bits(want[i]) != math.Float32bits(got[i]) {
			t.Fatalf("%v %s: padding c[%d] changed", l, op, i)
		}
	}
}

// TestGemmPackedNoAllocs: repacking a shape no larger than before and the
// packed products allocate nothing.
func TestGemmPackedNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(33))
	m, n, k := 30, 100, 200
	a, b, c := randGemm(r, m*k), randGemm(r, n*k), make([]float32, m*n)
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		var pa PackedA
		var pb PackedB
		pa.Pack(m, k, a, k)
		pb.Pack(k, n, b, n)
		for _, f := range []func(){
			func() { pa.Pack(m, k, a, k) },
			func() { pb.Pack(k, n, b, n) },
			func() { GemmNTPacked(n, 1, &pa, b, k, 0, c, n) },
			func() { GemmTNPacked(m, 1, a, m, &pb, 1, c, n) },
		} {
			if got := testing.AllocsPerRun(5, f); got != 0 {
				t.Errorf("%v: %v allocations per call", l, got)
			}
		}
		restore()
	}
}

// TestGemmPackedPanics: bad shapes panic with the function and sizes named.
func TestGemmPackedPanics(t *testing.T) {
	f := make([]float32, 64)
	var pa PackedA
	pa.Pack(3, 2, f, 2)
	var pb PackedB
	pb.Pack(2, 4, f, 4)
	for _, tc := range []struct {
		want string
		call func()
	}{
		{"asm: PackedA.Pack: len(a) = 5, want ≥ 6 for m=3, k=2, lda=2", func() { new(PackedA).Pack(3, 2, f[:5], 2) }},
		{"asm: PackedA.Pack: negative dimension: m = -1, k = 2", func() { new(PackedA).Pack(-1, 2, f, 2) }},
		{"asm: PackedB.Pack: ldb = 3 < n = 4", func() { new(PackedB).Pack(2, 4, f, 3) }},
		{"asm: GemmNTPacked: len(c) = 11, want ≥ 12 for m=3, n=4, ldc=4", func() { GemmNTPacked(4, 1, &pa, f, 2, 0, f[:11], 4) }},
		{"asm: GemmNTPacked: nil PackedA", func() { GemmNTPacked(4, 1, nil, f, 2, 0, f, 4) }},
		{"asm: GemmTNPacked: len(a) = 5, want ≥ 6 for k=2, m=3, lda=3", func() { GemmTNPacked(3, 1, f[:5], 3, &pb, 0, f, 4) }},
		{"asm: GemmTNPacked: nil PackedB", func() { GemmTNPacked(3, 1, f, 3, nil, 0, f, 4) }},
	} {
		if got := panicMessage(tc.call); got != tc.want {
			t.Errorf("panic %q, want %q", got, tc.want)
		}
	}
}

// TestGemmScaleRoutines checks each level's scaling store against its Go
// twin, bitwise, for every mr, β = 0 (C full of NaN, never read) and β = 1.
func TestGemmScaleRoutines(t *testing.T) {
	r := rand.New(rand.NewSource(34))
	for _, l := range simd.Usable() {
		g, ok := gemmDrivers[l]
		if !ok {
			continue
		}
		twin := gemmScaleGeneric(g.nr)
		ldc := g.nr + 3
		for mr := 1; mr <= g.mr; mr++ {
			for _, beta := range []float32{0, 1} {
				tile, rs, cs := randGemm(r, mr*g.nr), randGemm(r, mr), randGemm(r, g.nr)
				c0 := randGemm(r, mr*ldc)
				if beta == 0 {
					for i := range c0 {
						c0[i] = float32(math.NaN())
					}
				}
				want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
				twin(mr, &tile[0], &want[0], ldc, &rs[0], &cs[0], beta)
				g.scale(mr, &tile[0], &got[0], ldc, &rs[0], &cs[0], beta)
				if i := firstBitDiff(want, got); i >= 0 {
					t.Fatalf("%v mr=%d β=%g: c[%d] = %v, twin %v", l, mr, beta, i, got[i], want[i])
				}
			}
		}
	}
}

// TestGemmNTPackedScaled: the fused epilogue gives bitwise rs[i]·(cs[j]·p)
// with p the packed product (α = 1, β = 0), at every level and for the
// small-blocked Go-kernel drivers (several depth passes, so the epilogue
// adds what the earlier passes left in C; row and column blocks; narrow
// tiles); C's old contents (NaN) are ignored.
func TestGemmNTPackedScaled(t *testing.T) {
	r := rand.New(rand.NewSource(35))
	check := func(name string, m, n, k int, product func(c []float32), scaled func(rs, cs, c []float32)) {
		t.Helper()
		ldc := n + 2
		rs, cs := randGemm(r, m), randGemm(r, n)
		want := make([]float32, m*ldc)
		product(want)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				want[i*ldc+j] = rs[i] * (cs[j] * want[i*ldc+j])
			}
		}
		got := make([]float32, m*ldc)
		for i := range got {
			if i%ldc < n {
				got[i] = float32(math.NaN())
			}
		}
		scaled(rs, cs, got)
		if i := firstBitDiff(want, got); i >= 0 {
			t.Fatalf("%s m=%d n=%d k=%d: c[%d] = %v, want %v", name, m, n, k, i, got[i], want[i])
		}
	}
	var abuf []float32
	for _, s := range [][2]int{{4, 8}, {3, 5}} {
		g := newGemmArch(gemmArch{mr: s[0], nr: s[1], kc: 32, kcDeep: 16, mc: 3 * s[0], nc: 3 * s[1], kernel: gemmKernelGeneric(s[0], s[1])})
		for _, sh := range packedShapes() {
			m, n, k := sh[0], sh[1], sh[2]
			a, b := randGemm(r, m*k), randGemm(r, n*k)
			pa := g.packAllA(&abuf, gemmOpNT, m, k, a, k)
			check(fmt.Sprintf("go%d×%d", s[0], s[1]), m, n, k,
				func(c []float32) { g.gemmPre(gemmOpNT, m, n, k, 1, nil, 0, b, k, 0, c, n+2, pa, nil, nil) },
				func(rs, cs, c []float32) {
					g.gemmPre(gemmOpNT, m, n, k, 1, nil, 0, b, k, 0, c, n+2, pa, nil, &gemmEpilogue{rs: rs, cs: cs})
				})
		}
	}
	var pa PackedA
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range append(packedShapes(), [3]int{256, 128, 512}, [3]int{300, 45, 700}, [3]int{7, 3, 0}) {
			m, n, k := sh[0], sh[1], sh[2]
			ld := max(k, 1)
			a, b := randGemm(r, m*ld), randGemm(r, n*ld)
			pa.Pack(m, k, a, ld)
			check(l.String(), m, n, k,
				func(c []float32) { GemmNTPacked(n, 1, &pa, b, ld, 0, c, n+2) },
				func(rs, cs, c []float32) { GemmNTPackedScaled(n, &pa, b, ld, rs, cs, c, n+2) })
		}
		restore()
	}
}

func TestGemmNTPackedScaledPanicsAllocs(t *testing.T) {
	f := make([]float32, 64)
	var pa PackedA
	pa.Pack(3, 2, f, 2)
	for _, tc := range []struct {
		want string
		call func()
	}{
		{"asm: GemmNTPackedScaled: len(rs) = 2, want ≥ m = 3", func() { GemmNTPackedScaled(4, &pa, f, 2, f[:2], f, f, 4) }},
		{"asm: GemmNTPackedScaled: len(cs) = 3, want ≥ n = 4", func() { GemmNTPackedScaled(4, &pa, f, 2, f, f[:3], f, 4) }},
		{"asm: GemmNTPackedScaled: len(c) = 11, want ≥ 12 for m=3, n=4, ldc=4", func() { GemmNTPackedScaled(4, &pa, f, 2, f, f, f[:11], 4) }},
		{"asm: GemmNTPackedScaled: nil PackedA", func() { GemmNTPackedScaled(4, nil, f, 2, f, f, f, 4) }},
	} {
		if got := panicMessage(tc.call); got != tc.want {
			t.Errorf("panic %q, want %q", got, tc.want)
		}
	}
	r := rand.New(rand.NewSource(36))
	m, n, k := 30, 100, 200
	a, b, c := randGemm(r, m*k), randGemm(r, n*k), make([]float32, m*n)
	rs, cs := randGemm(r, m), randGemm(r, n)
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		pa.Pack(m, k, a, k)
		GemmNTPackedScaled(n, &pa, b, k, rs, cs, c, n)
		if got := testing.AllocsPerRun(5, func() { GemmNTPackedScaled(n, &pa, b, k, rs, cs, c, n) }); got != 0 {
			t.Errorf("%v: %v allocations per call", l, got)
		}
		restore()
	}
}

// TestPackEmptyRows: packing a matrix with rows but no columns (k = 0 for
// A, n = 0 for B) from an empty slice works at every level.
func TestPackEmptyRows(t *testing.T) {
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		var pa PackedA
		pa.Pack(5, 0, nil, 1)
		var pb PackedB
		pb.Pack(4, 0, nil, 1)
		c := []float32{3, 3, 3, 3, 3}
		GemmNTPacked(1, 1, &pa, []float32{0}, 1, 0, c, 1)
		if c[0] != 0 {
			t.Errorf("%v: k = 0 gives %v, want 0", l, c[0])
		}
		restore()
	}
}
