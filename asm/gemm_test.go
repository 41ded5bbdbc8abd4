package asm

import (
	"bufio"
	"fmt"
	"math"
	"math/rand"
	"os"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// The GEMM tests compare every level (Table.At, so MARGINLOSS_REQUIRE sees
// it) with a float64 reference. Each element of C is a float32 sum of k+1
// terms, the k products α·a_ip·b_pj and β·c_ij, so the bound is the one for
// every sum here:
//
//	(k+9)·eps·(|α|·Σ_p |a_ip·b_pj| + |β·c_ij|)

// gemmCase is one call: op(A) is m×k, op(B) is k×n, with leading dimensions
// at least the row widths, and the α, β to use.
type gemmCase struct {
	op            gemmOp
	m, n, k       int
	lda, ldb, ldc int
	alpha, beta   float32
}

func (tc gemmCase) String() string {
	return fmt.Sprintf("%s m=%d n=%d k=%d lda=%d ldb=%d ldc=%d α=%v β=%v",
		[...]string{"NT", "NN", "TN"}[tc.op], tc.m, tc.n, tc.k, tc.lda, tc.ldb, tc.ldc, tc.alpha, tc.beta)
}

// dims are the stored rows and columns of A and B.
func (tc gemmCase) dims() (ar, ac, br, bc int) {
	switch tc.op {
	case gemmOpNT:
		return tc.m, tc.k, tc.n, tc.k
	case gemmOpNN:
		return tc.m, tc.k, tc.k, tc.n
	default:
		return tc.k, tc.m, tc.k, tc.n
	}
}

// opA and opB read op(A)[i][p] and op(B)[p][j].
func (tc gemmCase) opA(a []float32, i, p int) float32 {
	if tc.op == gemmOpTN {
		return a[p*tc.lda+i]
	}
	return a[i*tc.lda+p]
}

func (tc gemmCase) opB(b []float32, p, j int) float32 {
	if tc.op == gemmOpNT {
		return b[j*tc.ldb+p]
	}
	return b[p*tc.ldb+j]
}

// span is the minimal slice length of a rows×cols operand with stride ld.
func span(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// gemmOperands holds one case's inputs in guarded memory, each operand
// exactly span long and flush against a PROT_NONE page at its end, or (head)
// at its start, so that an access outside it faults; and the float64
// reference with its bound.
type gemmOperands struct {
	a, b, c0    []float32
	want, bound []float64
	bufs        [3]*guardBuf
}

func newGemmOperands(t testing.TB, maxA, maxB, maxC int) *gemmOperands {
	return &gemmOperands{bufs: [3]*guardBuf{newGuardBuf(t, maxA), newGuardBuf(t, maxB), newGuardBuf(t, maxC)}}
}

// fill draws A, B and C for tc (C NaN when β = 0, and its padding columns
// between n and ldc a sentinel) and computes the reference.
func (o *gemmOperands) fill(r *rand.Rand, tc gemmCase, head bool) {
	ar, ac, br, bc := tc.dims()
	take := func(g *guardBuf, n int) []float32 {
		if head {
			return g.head(n, 0)
		}
		return g.tail(n, 0)
	}
	o.a = take(o.bufs[0], span(ar, ac, tc.lda))
	o.b = take(o.bufs[1], span(br, bc, tc.ldb))
	o.c0 = make([]float32, span(tc.m, tc.n, tc.ldc))
	for i := range o.a {
		o.a[i] = float32(r.NormFloat64())
	}
	for i := range o.b {
		o.b[i] = float32(r.NormFloat64())
	}
	for i := range o.c0 {
		switch {
		case i%tc.ldc >= tc.n:
			o.c0[i] = 12345 // padding sentinel
		case tc.beta == 0:
			o.c0[i] = float32(math.NaN())
		default:
			o.c0[i] = float32(r.NormFloat64())
		}
	}
	o.want, o.bound = gemmReference(tc, o.a, o.b, o.c0)
}

// gemmReference is α·op(A)·op(B) + β·C in float64, with the bound above.
func gemmReference(tc gemmCase, a, b, c0 []float32) (want, bound []float64) {
	want, bound = make([]float64, tc.m*tc.n), make([]float64, tc.m*tc.n)
	eps := 0x1p-23
	col := make([]float64, tc.k)
	for j := 0; j < tc.n; j++ {
		for p := range col {
			col[p] = float64(tc.opB(b, p, j))
		}
		for i := 0; i < tc.m; i++ {
			var dot, abs float64
			for p, bv := range col {
				v := float64(tc.opA(a, i, p)) * bv
				dot += v
				abs += math.Abs(v)
			}
			w := float64(tc.alpha) * dot
			terms := math.Abs(float64(tc.alpha)) * abs
			if tc.beta != 0 {
				bc := float64(tc.beta) * float64(c0[i*tc.ldc+j])
				w += bc
				terms += math.Abs(bc)
			}
			e := float64(tc.k+9) * eps * terms
			want[i*tc.n+j], bound[i*tc.n+j] = w, e
		}
	}
	return want, bound
}

// run calls f on a guarded copy of C and checks it against the reference
// and that the padding is untouched.
func (o *gemmOperands) run(t *testing.T, name string, f gemmFunc, tc gemmCase, head bool) {
	t.Helper()
	var c []float32
	if head {
		c = o.bufs[2].head(len(o.c0), 0)
	} else {
		c = o.bufs[2].tail(len(o.c0), 0)
	}
	copy(c, o.c0)
	f(tc.m, tc.n, tc.k, tc.alpha, o.a, tc.lda, o.b, tc.ldb, tc.beta, c, tc.ldc)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			got, want, bound := float64(c[i*tc.ldc+j]), o.want[i*tc.n+j], o.bound[i*tc.n+j]
			if !(math.Abs(got-want) <= bound+1e-37) {
				t.Fatalf("%s %v: C[%d][%d] = %v, want %v ± %v", name, tc, i, j, got, want, bound)
			}
		}
		for j := tc.n; j < tc.ldc && i*tc.ldc+j < len(c); j++ {
			if math.Float32bits(c[i*tc.ldc+j]) != math.Float32bits(o.c0[i*tc.ldc+j]) {
				t.Fatalf("%s %v: wrote padding C[%d][%d]", name, tc, i, j)
			}
		}
	}
}

var gemmTables = [3]*simd.Table[func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)]{
	gemmOpNT: gemmNTImpl, gemmOpNN: gemmNNImpl, gemmOpTN: gemmTNImpl,
}

// gemmMaxTile is the largest MR and NR of the levels built here (the
// generic twin counts as 1×1).
func gemmMaxTile() (mr, nr int) {
	mr, nr = 1, 1
	for _, d := range gemmDrivers {
		m, n := d.tile()
		mr, nr = max(mr, m), max(nr, n)
	}
	return mr, nr
}

var gemmAlphaBeta = [][2]float32{{1, 0}, {0.75, 1}, {-2, 0.5}, {1, -1.5}, {0.5, 0}, {1, 1}}

// runAllLevels checks every level of tc's table on guarded operands, flush
// against their leading guard page (head) or their trailing one.
func runAllLevels(t *testing.T, r *rand.Rand, o *gemmOperands, tc gemmCase, head bool) {
	t.Helper()
	o.fill(r, tc, head)
	for _, l := range gemmTables[tc.op].Levels() {
		f, _ := gemmTables[tc.op].At(l)
		o.run(t, l.String(), f, tc, head)
	}
}

// TestGemmTileShapes covers every m in 1..2·MR+1 and n in 1..2·NR+1 (the
// largest level's tile) at small k, so that each micro-kernel height and
// every partial panel is hit with and without full tiles beside it.
func TestGemmTileShapes(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	mr, nr := gemmMaxTile()
	maxK := 17
	o := newGemmOperands(t, (2*mr+4)*(maxK+3), (2*nr+4)*(maxK+3)+maxK*(2*nr+4), (2*mr+1)*(2*nr+4))
	i := 0
	for m := 1; m <= 2*mr+1; m++ {
		for n := 1; n <= 2*nr+1; n++ {
			for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
				k := []int{3, 1, 2, 17}[(m+n+int(op))%4]
				ab := gemmAlphaBeta[i%len(gemmAlphaBeta)]
				i++
				tc := gemmCase{op: op, m: m, n: n, k: k, alpha: ab[0], beta: ab[1]}
				_, ac, _, bc := tc.dims()
				tc.lda, tc.ldb, tc.ldc = ac+i%3, bc+(i/3)%3, n+(i/9)%3
				runAllLevels(t, r, o, tc, i%2 == 0)
			}
		}
	}
}

// TestGemmDepth covers depths around the depth block (one pass, two passes
// of near-equal halves, three passes) with partial tiles at both edges.
func TestGemmDepth(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	mr, nr := gemmMaxTile()
	kc := 512
	for _, d := range gemmDrivers {
		kc, _, _ = d.blocking()
	}
	m, n := 2*mr+1, 2*nr+1
	maxK := 2*kc + 3
	o := newGemmOperands(t, (m+3)*(maxK+3), (n+3)*(maxK+3), m*(n+3))
	for i, k := range []int{1, 2, 3, 17, kc - 1, kc, kc + 1, 2*kc + 3} {
		for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
			ab := gemmAlphaBeta[(i+int(op))%len(gemmAlphaBeta)]
			tc := gemmCase{op: op, m: m, n: n, k: k, alpha: ab[0], beta: ab[1]}
			_, ac, _, bc := tc.dims()
			tc.lda, tc.ldb, tc.ldc = ac+1, bc+3, n+2
			runAllLevels(t, r, o, tc, false)
			runAllLevels(t, r, o, tc, true)
		}
	}
}

// TestGemmBlocks runs shapes past the row and column blocks of the real
// blocking (m > mc, n > nc: packed B̃ blocks reused across row blocks).
func TestGemmBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("large shapes")
	}
	r := rand.New(rand.NewSource(13))
	m, n, k := 500, 1100, 9
	o := newGemmOperands(t, (m+2)*(k+2), (n+2)*(k+2), m*(n+1))
	for i, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
		ab := gemmAlphaBeta[i+1]
		tc := gemmCase{op: op, m: m, n: n, k: k, alpha: ab[0], beta: ab[1]}
		_, ac, _, bc := tc.dims()
		tc.lda, tc.ldb, tc.ldc = ac+2, bc+1, n+1
		runAllLevels(t, r, o, tc, i%2 == 0)
	}
}

// TestGemmDriverBlocking runs each level's driver with tiny blocking, so that
// small shapes take every loop: several column blocks, depth passes (β = 1
// after the first), row blocks with B̃ packed once and reused, partial
// slivers and panels in each, and the tile-buffer path for every tile.
func TestGemmDriverBlocking(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	o := newGemmOperands(t, 80*80, 200*80, 80*200)
	for _, l := range simd.Usable() {
		d, ok := gemmDrivers[l]
		if !ok {
			continue
		}
		mr, nr := d.tile()
		for _, viaTile := range []bool{false, true} {
			fs := d.with(16, 2*mr, 2*nr, viaTile)
			i := 0
			for _, m := range []int{1, mr, 2*mr + 1, 5*mr + 3} {
				for _, n := range []int{1, nr + 1, 3*nr + 5} {
					for _, k := range []int{1, 8, 15, 16, 17, 40} {
						for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
							ab := gemmAlphaBeta[i%len(gemmAlphaBeta)]
							i++
							tc := gemmCase{op: op, m: m, n: n, k: k, alpha: ab[0], beta: ab[1]}
							_, ac, _, bc := tc.dims()
							tc.lda, tc.ldb, tc.ldc = ac+i%2, bc+i%3, n+i%4
							head := i%2 == 0
							o.fill(r, tc, head)
							o.run(t, fmt.Sprintf("%v viaTile=%v", l, viaTile), fs[op], tc, head)
						}
					}
				}
			}
		}
	}
}

// TestGemmZeroSizes checks the degenerate shapes: nothing written for m = 0
// or n = 0, and C ← β·C for k = 0 (β = 0 clears NaN).
func TestGemmZeroSizes(t *testing.T) {
	for _, op := range []gemmOp{gemmOpNT, gemmOpNN, gemmOpTN} {
		for _, l := range gemmTables[op].Levels() {
			f, _ := gemmTables[op].At(l)
			f(0, 3, 2, 1, nil, 2, make([]float32, 6), 3, 0, nil, 3)
			f(3, 0, 2, 1, make([]float32, 6), 2, nil, 2, 0, nil, 1)
			c := []float32{float32(math.NaN()), 2, 7, 4, 5, 7}
			f(2, 2, 0, 1, nil, 1, nil, 2, 0, c, 3)
			want := []float32{0, 0, 7, 0, 0, 7}
			for i := range want {
				if c[i] != want[i] {
					t.Fatalf("%v %d: k=0 β=0 gave %v", l, op, c)
				}
			}
			c = []float32{1, 2, 7, 4, 5, 7}
			f(2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 3)
			want = []float32{0.5, 1, 7, 2, 2.5, 7}
			for i := range want {
				if c[i] != want[i] {
					t.Fatalf("%v %d: k=0 β=0.5 gave %v", l, op, c)
				}
			}
		}
	}
}

// TestGemmConcurrent runs different shapes on several goroutines at once
// (the packing buffers must never be shared) and expects the
// results of one goroutine alone, bit for bit.
func TestGemmConcurrent(t *testing.T) {
	r := rand.New(rand.NewSource(15))
	type job struct {
		m, n, k int
		a, b    []float32
		want    []float32
	}
	jobs := make([]job, 8)
	for i := range jobs {
		j := job{m: 5 + 7*i, n: 20 + 13*i, k: 10 + 37*i}
		j.a = randGemm(r, j.m*j.k)
		j.b = randGemm(r, j.n*j.k)
		j.want = make([]float32, j.m*j.n)
		GemmNT(j.m, j.n, j.k, 1, j.a, j.k, j.b, j.k, 0, j.want, j.n)
		jobs[i] = j
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(jobs))
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 2; rep++ {
				for i := range jobs {
					j := &jobs[(i+g)%len(jobs)]
					c := make([]float32, j.m*j.n)
					GemmNT(j.m, j.n, j.k, 1, j.a, j.k, j.b, j.k, 0, c, j.n)
					for x := range c {
						if math.Float32bits(c[x]) != math.Float32bits(j.want[x]) {
							errs <- fmt.Sprintf("goroutine %d job %d: C[%d] = %v, alone %v", g, i, x, c[x], j.want[x])
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// TestGemmNoAllocs: the packing buffers are kept for the next call, so a
// repeated call allocates nothing (also under the race detector).
func TestGemmNoAllocs(t *testing.T) {
	r := rand.New(rand.NewSource(16))
	m, n, k := 30, 100, 200
	a, b, c := randGemm(r, m*k), randGemm(r, n*k), make([]float32, m*n)
	for _, l := range simd.Usable() {
		restore, err := simd.Force(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []func(){
			func() { GemmNT(m, n, k, 1, a, k, b, k, 0, c, n) },
			func() { GemmNN(m, n, k, 1, a, k, b, n, 1, c, n) },
			func() { GemmTN(m, n, k/2, 1, a, m, b, n, 0.5, c, n) },
		} {
			if got := testing.AllocsPerRun(5, f); got != 0 {
				t.Errorf("%v: %v allocations per call", l, got)
			}
		}
		restore()
	}
}

func randGemm(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// TestGemmAsmHygiene reads the generated gemm_amd64.s: every RET follows a
// VZEROUPPER, no legacy SSE instruction appears, and the AVX2 bodies and the
// shared packing routines name no register that an AVX2-only CPU lacks
// (Y16–Y31, X16–X31, ZMM, opmask).
func TestGemmAsmHygiene(t *testing.T) {
	f, err := os.Open("gemm_amd64.s")
	if err != nil {
		t.Skip("no gemm_amd64.s in this tree")
	}
	defer f.Close()
	avx512Only := regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z[0-9]+|K[0-7])\b`)
	sse := regexp.MustCompile(`^(MOV(SS|SD|UPS|APS|HPS|LPS)|(ADD|SUB|MUL|DIV|MAX|MIN|XOR|AND|OR|SQRT)(PS|SS)|SHUFPS|UNPCK[LH]PS|BROADCASTSS)\b`)
	var fn, prev string
	rets := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(s, "TEXT ") {
			fn = s
			continue
		}
		if s == "" || strings.HasPrefix(s, "//") || strings.HasSuffix(s, ":") || strings.HasPrefix(s, "#") {
			continue
		}
		ins := strings.Fields(s)[0]
		if sse.MatchString(ins) {
			t.Errorf("line %d (%s): legacy SSE %q", line, fn, s)
		}
		if !strings.Contains(fn, "AVX512") && avx512Only.MatchString(s) {
			t.Errorf("line %d (%s): AVX-512 register in an AVX2 body: %q", line, fn, s)
		}
		if ins == "RET" {
			rets++
			if prev != "VZEROUPPER" {
				t.Errorf("line %d (%s): RET without VZEROUPPER", line, fn)
			}
		}
		prev = ins
	}
	if rets == 0 && runtime.GOARCH == "amd64" {
		t.Error("gemm_amd64.s has no RET")
	}
}

// BenchmarkGemmKernel times the micro-kernel alone on packed operands in
// L1/L2 (MR×NR tile, depth 512): the ceiling the driver works under.
func BenchmarkGemmKernel(b *testing.B) {
	for _, l := range simd.Usable() {
		d, ok := gemmDrivers[l]
		if !ok {
			continue
		}
		mr, nr := d.tile()
		const kc = 512
		r := rand.New(rand.NewSource(17))
		a, bp, c := randGemm(r, kc*mr), randGemm(r, kc*nr), make([]float32, mr*nr)
		b.Run(l.String(), func(b *testing.B) {
			for b.Loop() {
				d.microKernel(mr, kc, a, bp, c, nr, 1, 0)
			}
			b.ReportMetric(2*float64(mr*nr*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkGemmSeam compares the two ways a tile reaches C at the head's
// logits shape: straight from registers (direct) and through the L1 tile
// buffer and merge that a fused epilogue would use (viaTile).
//
//	go test ./asm -run '^$' -bench GemmSeam -benchtime 10x -count 3
func BenchmarkGemmSeam(b *testing.B) {
	r := rand.New(rand.NewSource(18))
	m, n, k := 256, 2048, 512
	a, w, c := randGemm(r, m*k), randGemm(r, n*k), make([]float32, m*n)
	for _, l := range simd.Usable() {
		d, ok := gemmDrivers[l]
		if !ok {
			continue
		}
		for _, viaTile := range []bool{false, true} {
			kc, mc, nc := d.blocking()
			f := d.with(kc, mc, nc, viaTile)[gemmOpNT]
			name := "direct"
			if viaTile {
				name = "viaTile"
			}
			b.Run(l.String()+"/"+name, func(b *testing.B) {
				for b.Loop() {
					f(m, n, k, 1, a, k, w, k, 0, c, n)
				}
				b.ReportMetric(2*float64(m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
