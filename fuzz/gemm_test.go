package fuzz

import (
	"math"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// The GEMM fuzz targets read a shape, leading-dimension padding, α, β and
// float32 bit patterns from the bytes, run every level of one of asm's
// GEMM tables ("GemmNT", "GemmNN", "GemmTN"), generic included, and hold each to a float64
// reference: every element of C is a float32 sum of k+1 terms (the k
// products and β·c), within (k+9)·eps·Σ|terms|, plus the underflow of each
// product: a subnormal rounding unit η, carried through the next factor
// (the generic twins round α·a before multiplying by b), so
// η·(1+|α|)·Σ_p (1 + |a| + |b|) + 2η. A and B are finite (values past 2^20
// are scaled down); with β = 0 C starts as NaN, which must not propagate;
// the padding between n and ldc must stay untouched.

// gemmBytes is the GEMM targets' byteReader: sizes (one byte) as int, and past the end
// of the bytes floats in the pattern (k mod 23 − 11)/4.
type gemmBytes struct{ byteReader }

func (r *gemmBytes) size() int { return int(r.u8()) }

// f32 is the next float32 bit pattern, made finite and at most 2^20 in
// magnitude (exponent folded down, so mantissa bits and subnormals stay).
func (r *gemmBytes) f32() float32 {
	v, ok := r.next32()
	if !ok {
		v = float32(r.k%23-11) / 4
	}
	if v != v || math.IsInf(float64(v), 0) {
		return float32(r.k%7) - 3
	}
	for math.Abs(float64(v)) > 1<<20 {
		v *= 0x1p-40
	}
	return v
}

func (r *gemmBytes) floats(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.f32()
	}
	return s
}

// fuzzGemm runs one shape of op ("NT", "NN" or "TN") at every level of tbl.
func fuzzGemm(t *testing.T, op string, tbl *simd.Table[gemmBody], data []byte) {
	r := &gemmBytes{byteReader{b: data}}
	m, n, k := r.size()%40, r.size()%70, r.size()%64
	flags := r.size()
	if flags&1 != 0 {
		k += 480 // straddle the 512-deep single pass
	}
	alpha := r.f32()
	beta := float32(0)
	if flags&2 != 0 {
		beta = r.f32()
	}
	// stored shapes of A and B
	ar, ac, br, bc := m, k, n, k
	switch op {
	case "NN":
		br, bc = k, n
	case "TN":
		ar, ac, br, bc = k, m, k, n
	}
	lda, ldb, ldc := max(ac+r.size()%5, 1), max(bc+r.size()%5, 1), max(n+r.size()%5, 1)
	span := func(rows, cols, ld int) int {
		if rows == 0 || cols == 0 {
			return 0
		}
		return (rows-1)*ld + cols
	}
	a, b := r.floats(span(ar, ac, lda)), r.floats(span(br, bc, ldb))
	c0 := r.floats(span(m, n, ldc))
	for i := range c0 {
		if i%ldc >= n {
			c0[i] = -777 // padding
		} else if beta == 0 {
			c0[i] = float32(math.NaN())
		}
	}
	opA := func(i, p int) float64 {
		if op == "TN" {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	opB := func(p, j int) float64 {
		if op == "NT" {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	want, bound := make([]float64, m*n), make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var dot, abs, under float64
			for p := 0; p < k; p++ {
				x, y := opA(i, p), opB(p, j)
				dot += x * y
				abs += math.Abs(x * y)
				under += 1 + math.Abs(x) + math.Abs(y)
			}
			w := float64(alpha) * dot
			terms := math.Abs(float64(alpha)) * abs
			if beta != 0 {
				bcv := float64(beta) * float64(c0[i*ldc+j])
				w += bcv
				terms += math.Abs(bcv)
			}
			want[i*n+j] = w
			bound[i*n+j] = float64(k+9)*0x1p-23*terms + 0x1p-149*((1+math.Abs(float64(alpha)))*under+2)
		}
	}
	for _, l := range tbl.Levels() {
		f, _ := tbl.At(l)
		c := append([]float32(nil), c0...)
		f(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		for i := 0; i < m; i++ {
			for j := 0; j < ldc && i*ldc+j < len(c); j++ {
				got := c[i*ldc+j]
				if j >= n {
					if math.Float32bits(got) != math.Float32bits(c0[i*ldc+j]) {
						t.Fatalf("Gemm%s %v m=%d n=%d k=%d: wrote padding C[%d][%d]", op, l, m, n, k, i, j)
					}
					continue
				}
				w, e := want[i*n+j], bound[i*n+j]
				if !(math.Abs(float64(got)-w) <= e) {
					t.Fatalf("Gemm%s %v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d α=%v β=%v: C[%d][%d] = %v, want %v ± %v",
						op, l, m, n, k, lda, ldb, ldc, alpha, beta, i, j, got, w, e)
				}
			}
		}
	}
}

// gemmSeeds are shapes around the AVX-512 12×32 and AVX2 6×16 tiles:
// m, n, k, flags (1: k += 480, 2: β from the bytes), then α, β and data.
var gemmSeeds = [][]byte{
	{25, 65, 3, 0, 0, 0, 128, 63},
	{13, 33, 17, 2, 0, 0, 64, 64, 0, 0, 0, 63, 1, 2, 3},
	{12, 32, 40, 3, 0, 0, 128, 191, 0, 0, 128, 63},
	{1, 1, 1, 0},
	{7, 17, 33, 1, 0, 0, 128, 63, 0, 0, 0, 0, 4, 3, 2, 1},
}

func FuzzGemmNT(f *testing.F) {
	for _, s := range gemmSeeds {
		f.Add(s)
	}
	tbl := table[gemmBody](f, "GemmNT")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzGemm(t, "NT", tbl, data) })
}

func FuzzGemmNN(f *testing.F) {
	for _, s := range gemmSeeds {
		f.Add(s)
	}
	tbl := table[gemmBody](f, "GemmNN")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzGemm(t, "NN", tbl, data) })
}

func FuzzGemmTN(f *testing.F) {
	for _, s := range gemmSeeds {
		f.Add(s)
	}
	tbl := table[gemmBody](f, "GemmTN")
	f.Fuzz(func(t *testing.T, data []byte) { fuzzGemm(t, "TN", tbl, data) })
}
