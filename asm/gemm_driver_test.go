package asm

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// The driver tests run gemmArch on every GOARCH, purego included: with the
// Go micro-kernel and Go packing (gemm_arch.go) it is a complete GEMM, so
// its loops, blocking and edges are checked wherever it builds; and each
// level's routines are checked against their Go twins, and its kernel under
// Go packing.

// gemmTestArch is a driver under test: a name and its NT, NN and TN
// bodies, direct and through the tile buffer.
type gemmTestArch struct {
	name            string
	direct, viaTile [3]gemmFunc
}

// gemmTestArches returns Go-kernel drivers for a few micro-tiles (4×8 takes
// packT8 for B̃ and packT4 for Ã; 3×5 and 9×12 the odd widths and Go's
// rows), with blocking small enough that shapes up to 40 take several depth
// passes, row blocks and column blocks; and each usable level's kernel and
// merge with Go packing.
func gemmTestArches() []gemmTestArch {
	var as []gemmTestArch
	add := func(name string, g *gemmArch) {
		as = append(as, gemmTestArch{name: name, direct: g.funcs(false), viaTile: g.with(g.kc, g.mc, g.nc, true)})
	}
	for _, s := range [][2]int{{4, 8}, {3, 5}, {9, 12}} {
		mr, nr := s[0], s[1]
		add(fmt.Sprintf("go%d×%d", mr, nr), newGemmArch(gemmArch{
			mr: mr, nr: nr, kc: 32, kcDeep: 16, mc: 3 * mr, nc: 3 * nr,
			kernel: gemmKernelGeneric(mr, nr),
		}))
	}
	for _, l := range simd.Usable() {
		if d, ok := gemmDrivers[l]; ok {
			add(l.String()+"+gopack", newGemmArch(gemmArch{
				mr: d.mr, nr: d.nr, kc: 16, kcDeep: 8, mc: 2 * d.mr, nc: 2 * d.nr,
				kernel: d.kernel, merge: d.merge,
			}))
		}
	}
	return as
}

// TestGemmDriverGeneric compares the Go-kernel drivers and the generic twin
// with the float64 reference over every m and n in 0..40 (k cycling through
// 0..40 around the blocking), a few larger shapes, all three ops and the
// α, β of gemmAlphaBeta (β = 0 with NaN in C).
func TestGemmDriverGeneric(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	arches := gemmTestArches()
	const maxD = 140
	o := newGemmOperands(t, (maxD+3)*(maxD+3), (maxD+3)*(maxD+3), (maxD+3)*(maxD+3))
	type shape struct{ m, n, k int }
	var shapes []shape
	ks := []int{0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40}
	for m := 0; m <= 40; m++ {
		for n := 0; n <= 40; n++ {
			shapes = append(shapes, shape{m, n, ks[(m*41+n)%len(ks)]})
		}
	}
	shapes = append(shapes, shape{97, 75, 131}, shape{45, 130, 40}, shape{130, 33, 70}, shape{1, 140, 65}, shape{140, 1, 65})
	generic := [3]gemmFunc{gemmOpNT: gemmNTGeneric, gemmOpNN: gemmNNGeneric, gemmOpTN: gemmTNGeneric}
	i := 0
	for _, s := range shapes {
		for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
			ab := gemmAlphaBeta[i%len(gemmAlphaBeta)]
			i++
			tc := gemmCase{op: op, m: s.m, n: s.n, k: s.k, alpha: ab[0], beta: ab[1]}
			_, ac, _, bc := tc.dims()
			tc.lda, tc.ldb, tc.ldc = max(ac, 1)+i%3, max(bc, 1)+(i/3)%3, max(s.n, 1)+(i/5)%3
			head := i%2 == 0
			o.fill(r, tc, head)
			o.run(t, "generic twin", generic[op], tc, head)
			for _, a := range arches {
				o.run(t, a.name, a.direct[op], tc, head)
				o.run(t, a.name+" viaTile", a.viaTile[op], tc, head)
			}
		}
	}
}

// TestGemmArchRoutines checks each level's packs against their Go twins bit
// for bit, and its kernel and merge, with the twins, against a float64
// reference (the bound of a sum of kc+1 terms), on guarded memory: C's
// padding columns and rows past mr are never written, and β = 0 ignores
// NaN in C.
func TestGemmArchRoutines(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	src, dst := newGuardBuf(t, 64*80), newGuardBuf(t, 64*80)
	for _, l := range simd.Usable() {
		g, ok := gemmDrivers[l]
		if !ok {
			continue
		}
		fill := func(s []float32) {
			for i := range s {
				s[i] = float32(r.NormFloat64())
			}
		}
		// pack runs f and its twin on the same source into dst and want
		// (both first filled with a sentinel) and compares them bit for bit.
		pack := func(name string, w, nd, ns int, f, twin func(d, s []float32)) {
			t.Helper()
			s := src.tail(ns, 0)
			fill(s)
			d := dst.tail(nd, 0)
			want := make([]float32, nd)
			for i := range d {
				d[i], want[i] = 12345, 12345
			}
			f(d, s)
			twin(want, s)
			for i := range d {
				if math.Float32bits(d[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%v %s: dst[%d] = %v, want %v", l, name, i, d[i], want[i])
				}
			}
		}
		for _, p := range []struct {
			w int
			f gemmPackTFunc
		}{{8, g.packT8}, {4, g.packT4}, {2, g.packT2}} {
			twin := gemmPackTGeneric(p.w)
			for _, kc8 := range []int{1, 2, 5} {
				for _, ldd := range []int{p.w, p.w + 3, g.mr, g.nr} {
					if ldd < p.w {
						continue
					}
					lds := 8*kc8 + kc8%3
					nd, ns := (8*kc8-1)*ldd+p.w, (p.w-1)*lds+8*kc8
					name := fmt.Sprintf("packT%d kc8=%d ldd=%d lds=%d", p.w, kc8, ldd, lds)
					pack(name, p.w, nd, ns,
						func(d, s []float32) { p.f(&d[0], ldd, &s[0], lds, kc8) },
						func(d, s []float32) { twin(&d[0], ldd, &s[0], lds, kc8) })
				}
			}
		}
		for _, p := range []struct {
			w int
			f gemmPackCFunc
		}{{g.mr, g.copyA}, {g.nr, g.copyB}} {
			twin := gemmPackCGeneric(p.w)
			for _, kc := range []int{1, 2, 7, 33} {
				for _, ldd := range []int{p.w, p.w + 5} {
					lds := p.w + kc%4
					nd, ns := (kc-1)*ldd+p.w, (kc-1)*lds+p.w
					name := fmt.Sprintf("packC%d kc=%d ldd=%d lds=%d", p.w, kc, ldd, lds)
					pack(name, p.w, nd, ns,
						func(d, s []float32) { p.f(&d[0], ldd, &s[0], lds, kc) },
						func(d, s []float32) { twin(&d[0], ldd, &s[0], lds, kc) })
				}
			}
		}

		kernelTwin, mergeTwin := gemmKernelGeneric(g.mr, g.nr), gemmMergeGeneric(g.nr)
		ab := newGuardBuf(t, 64*80)
		cbuf := newGuardBuf(t, 64*80)
		i := 0
		for mr := 1; mr <= g.mr; mr++ {
			for _, kc := range []int{0, 1, 3, 8, 17} {
				alpha, beta := gemmAlphaBeta[i%len(gemmAlphaBeta)][0], gemmAlphaBeta[i%len(gemmAlphaBeta)][1]
				i++
				ldc := g.nr + 1 + i%3
				// a: kc steps of MR (rows past mr NaN, never read); b: kc
				// steps of NR; t: mr×NR; c0: C with NaN when β = 0.
				a := make([]float32, max(kc*g.mr, 1))
				for p := 0; p < kc; p++ {
					for x := 0; x < g.mr; x++ {
						a[p*g.mr+x] = float32(r.NormFloat64())
						if x >= mr {
							a[p*g.mr+x] = float32(math.NaN())
						}
					}
				}
				b := make([]float32, max(kc*g.nr, 1))
				fill(b[:kc*g.nr])
				tile := make([]float32, mr*g.nr)
				fill(tile)
				nc := (mr-1)*ldc + g.nr
				c0 := make([]float32, nc)
				for x := range c0 {
					switch {
					case x%ldc >= g.nr:
						c0[x] = 12345
					case beta == 0:
						c0[x] = float32(math.NaN())
					default:
						c0[x] = float32(r.NormFloat64())
					}
				}
				// want and bound for the kernel, then for the merge.
				check := func(name string, c []float32, want, bound func(x, j int) float64) {
					t.Helper()
					for x := 0; x < mr; x++ {
						for j := 0; j < ldc && x*ldc+j < nc; j++ {
							got := c[x*ldc+j]
							if j >= g.nr {
								if math.Float32bits(got) != math.Float32bits(c0[x*ldc+j]) {
									t.Fatalf("%v %s mr=%d kc=%d: wrote padding C[%d][%d]", l, name, mr, kc, x, j)
								}
								continue
							}
							if w, e := want(x, j), bound(x, j); !(math.Abs(float64(got)-w) <= e+1e-37) {
								t.Fatalf("%v %s mr=%d kc=%d α=%v β=%v: C[%d][%d] = %v, want %v ± %v", l, name, mr, kc, alpha, beta, x, j, got, w, e)
							}
						}
					}
				}
				betaC := func(x, j int) float64 {
					if beta == 0 {
						return 0
					}
					return float64(beta) * float64(c0[x*ldc+j])
				}
				kernelWant := func(x, j int) float64 {
					var s float64
					for p := 0; p < kc; p++ {
						s += float64(a[p*g.mr+x]) * float64(b[p*g.nr+j])
					}
					return float64(alpha)*s + betaC(x, j)
				}
				kernelBound := func(x, j int) float64 {
					var s float64
					for p := 0; p < kc; p++ {
						s += math.Abs(float64(a[p*g.mr+x]) * float64(b[p*g.nr+j]))
					}
					return float64(kc+9) * 0x1p-23 * (math.Abs(float64(alpha))*s + math.Abs(betaC(x, j)))
				}
				mergeWant := func(x, j int) float64 {
					return float64(alpha)*float64(tile[x*g.nr+j]) + betaC(x, j)
				}
				mergeBound := func(x, j int) float64 {
					return 10 * 0x1p-23 * (math.Abs(float64(alpha)*float64(tile[x*g.nr+j])) + math.Abs(betaC(x, j)))
				}
				for _, head := range []bool{false, true} {
					var ag, bg, c []float32
					if head {
						ag, bg, c = ab.head(len(a), 0), src.head(len(b), 0), cbuf.head(nc, 0)
					} else {
						ag, bg, c = ab.tail(len(a), 0), src.tail(len(b), 0), cbuf.tail(nc, 0)
					}
					copy(ag, a)
					copy(bg, b)
					for _, k := range []struct {
						name string
						f    gemmKernelFunc
					}{{"kernel", g.kernel}, {"kernel twin", kernelTwin}} {
						copy(c, c0)
						k.f(mr, kc, &ag[0], &bg[0], &c[0], ldc, alpha, beta)
						check(k.name, c, kernelWant, kernelBound)
					}
					tg := dst.tail(len(tile), 0)
					copy(tg, tile)
					for _, m := range []struct {
						name string
						f    gemmMergeFunc
					}{{"merge", g.merge}, {"merge twin", mergeTwin}} {
						copy(c, c0)
						m.f(mr, &tg[0], &c[0], ldc, alpha, beta)
						check(m.name, c, mergeWant, mergeBound)
					}
				}
			}
		}
	}
}

// TestNewGemmArch checks that a level's arch has every routine after
// newGemmArch (the Go twins where it supplies none), and that malformed
// shapes and blocking panic.
func TestNewGemmArch(t *testing.T) {
	g := newGemmArch(gemmArch{mr: 4, nr: 8, kc: 64, kcDeep: 32, mc: 16, nc: 32, kernel: gemmKernelGeneric(4, 8)})
	if g.merge == nil || g.packT8 == nil || g.packT4 == nil || g.packT2 == nil || g.copyA == nil || g.copyB == nil || g.prefetch == nil {
		t.Fatalf("newGemmArch left a routine nil: %+v", g)
	}
	for _, d := range gemmDrivers {
		if d.kernel == nil || d.merge == nil || d.packT8 == nil || d.packT4 == nil || d.packT2 == nil || d.copyA == nil || d.copyB == nil || d.prefetch == nil {
			t.Fatalf("a registered driver has a nil routine: %+v", d)
		}
	}
	for _, bad := range []gemmArch{
		{mr: 0, nr: 8, kc: 64, kcDeep: 32, mc: 16, nc: 32, kernel: g.kernel},
		{mr: 4, nr: 8, kc: 60, kcDeep: 32, mc: 16, nc: 32, kernel: g.kernel},
		{mr: 4, nr: 8, kc: 64, kcDeep: 128, mc: 16, nc: 32, kernel: g.kernel},
		{mr: 4, nr: 8, kc: 64, kcDeep: 32, mc: 18, nc: 32, kernel: g.kernel},
		{mr: 4, nr: 8, kc: 64, kcDeep: 32, mc: 16, nc: 36, kernel: g.kernel},
		{mr: 4, nr: 8, kc: 64, kcDeep: 32, mc: 16, nc: 32},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("newGemmArch(%+v) did not panic", bad)
				}
			}()
			newGemmArch(bad)
		}()
	}
}
