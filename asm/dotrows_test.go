package asm

import (
	"math"
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDotRows: every element bitwise GemmNT's 1×1 product at every level
// (the heads' target logits keep their bits), within the sequential sum's
// error bound of the float64 dot, and dst untouched where rows[i] < 0; the
// rows in groups of four and in the tail, repeated and unsorted rows,
// strides past k, k = 0.
func TestDotRows(t *testing.T) {
	r := rand.New(rand.NewSource(41))
	const nb = 9 // rows of B
	for _, k := range []int{0, 1, 3, 4, 7, 16, 63, 512, 515} {
		for _, rows := range [][]int32{
			{},
			{-1, -1},
			{2},
			{0, 8, 3, 3},
			{5, -1, 1, 7, 0, -1, 2, 8, 4, 4, 6, -1, 3},
			{8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3},
		} {
			lda, ldb := k+3, k+1
			m := len(rows)
			a := randSlice(r, max(m*lda, 1), 1)
			b := randSlice(r, nb*ldb, 1)
			if k > 2 && m > 0 { // values across the range: zeros, a subnormal, a large one
				a[0], a[1], b[ldb+2] = 0, 1e-39, 3e18
			}
			sentinel := float32(math.NaN())
			dst := make([]float32, m+2)
			for i := range dst {
				dst[i] = sentinel
			}
			DotRows(dst, k, a, lda, b, ldb, rows)
			for i, row := range rows {
				if row < 0 {
					require.Equal(t, math.Float32bits(sentinel), math.Float32bits(dst[i]), "k=%d rows=%v: wrote row %d", k, rows, i)
					continue
				}
				var want, abs float64
				for p := 0; p < k; p++ {
					v := float64(a[i*lda+p]) * float64(b[int(row)*ldb+p])
					want += v
					abs += math.Abs(v)
				}
				require.InDelta(t, want, float64(dst[i]), float64(k+1)*0x1p-23*abs+1e-38, "k=%d rows=%v i=%d", k, rows, i)
				for _, l := range gemmNTImpl.Levels() {
					f, _ := gemmNTImpl.At(l)
					c := []float32{7}
					f(1, 1, k, 1, a[i*lda:], lda, b[int(row)*ldb:], ldb, 0, c, 1)
					require.Equal(t, math.Float32bits(c[0]), math.Float32bits(dst[i]), "k=%d rows=%v i=%d: GemmNT at %v gives %v, DotRows %v", k, rows, i, l, c[0], dst[i])
				}
			}
			for i := m; i < len(dst); i++ {
				require.Equal(t, math.Float32bits(sentinel), math.Float32bits(dst[i]), "k=%d: wrote dst[%d] past rows", k, i)
			}
		}
	}
}

func TestDotRowsAllocs(t *testing.T) {
	a, b := make([]float32, 10*64), make([]float32, 5*64)
	dst := make([]float32, 10)
	rows := []int32{0, 1, 2, 3, 4, -1, 0, 1, 2, 3}
	if n := testing.AllocsPerRun(20, func() { DotRows(dst, 64, a, 64, b, 64, rows) }); n != 0 {
		t.Fatalf("DotRows allocates %v times a call", n)
	}
}

// BenchmarkDotRows: the head's target logits at N = 256, D = 512, one
// GemmNT call per row against DotRows.
func BenchmarkDotRows(b *testing.B) {
	const n, d, c = 256, 512, 1000
	r := rand.New(rand.NewSource(1))
	x, w := randSlice(r, n*d, 1), randSlice(r, c*d, 1)
	rows := make([]int32, n)
	for i := range rows {
		rows[i] = int32(r.Intn(c))
	}
	t := make([]float32, n)
	b.Run("GemmNT", func(b *testing.B) {
		for b.Loop() {
			for i, y := range rows {
				GemmNT(1, 1, d, 1, x[i*d:], d, w[int(y)*d:], d, 0, t[i:i+1], 1)
			}
		}
	})
	b.Run("DotRows", func(b *testing.B) {
		for b.Loop() {
			DotRows(t, d, x, d, w, d, rows)
		}
	})
}
