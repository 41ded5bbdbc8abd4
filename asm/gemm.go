package asm

import "github.com/marginloss/marginloss/internal/simd"

// The three GEMM shapes the losses need, C = α·op(A)·op(B) + β·C, all
// row-major with explicit leading dimensions (row strides):
//
//	GemmNT: C (m×n) = α·A·Bᵀ + β·C, A is m×k, B is n×k   (cos = X̂·Ŵᵀ)
//	GemmNN: C (m×n) = α·A·B  + β·C, A is m×k, B is k×n   (dX̂ = G·Ŵ)
//	GemmTN: C (m×n) = α·Aᵀ·B + β·C, A is k×m, B is k×n   (dŴ = Gᵀ·X̂)
//
// β = 0 means C is only written, never read (NaN in C does not propagate).
// They panic when a slice is too short for its shape and stride.
type gemmFunc func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)

var (
	gemmNTImpl = simd.NewTable("GemmNT", gemmNTGeneric)
	gemmNNImpl = simd.NewTable("GemmNN", gemmNNGeneric)
	gemmTNImpl = simd.NewTable("GemmTN", gemmTNGeneric)
)

// GemmNT computes C = α·A·Bᵀ + β·C, where A is m×k, B is n×k and C is m×n,
// each stored row-major with row stride lda, ldb or ldc:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[i*lda+p] * b[j*ldb+p]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}
//
// β = 0 ignores the old contents of C: it is only written, so NaN or Inf
// there does not propagate. k = 0 gives C = β·C. Columns n..ldc−1 of C are
// not touched. The levels add the products in different orders (the
// assembly ones with fused multiply-adds), so their results differ in the
// last bits: each element is within (k+9)·2⁻²³·Σ|terms| of the exact
// result, the terms being the k products α·a·b and β·c (plus the absolute
// rounding of products that underflow).
//
// It panics, naming the operand and the sizes, when m, n or k is negative,
// when a stride is less than its row length (or 1), or when a slice is
// shorter than (rows−1)·stride + columns.
func GemmNT(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmNT", m, n, k, "mk", a, lda, "nk", b, ldb, c, ldc)
	gemmNTImpl.Get()(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmNN computes C = α·A·B + β·C, where A is m×k, B is k×n and C is m×n,
// each stored row-major with row stride lda, ldb or ldc:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[i*lda+p] * b[p*ldb+j]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}
//
// Everything else is as for GemmNT: β = 0 ignores C's old contents, the
// error bound and the panics.
func GemmNN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmNN", m, n, k, "mk", a, lda, "kn", b, ldb, c, ldc)
	gemmNNImpl.Get()(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// GemmTN computes C = α·Aᵀ·B + β·C, where A is k×m, B is k×n and C is m×n,
// each stored row-major with row stride lda, ldb or ldc:
//
//	for i := 0; i < m; i++ {
//		for j := 0; j < n; j++ {
//			var s float32
//			for p := 0; p < k; p++ {
//				s += a[p*lda+i] * b[p*ldb+j]
//			}
//			if beta == 0 {
//				c[i*ldc+j] = alpha * s
//			} else {
//				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
//			}
//		}
//	}
//
// Everything else is as for GemmNT: β = 0 ignores C's old contents, the
// error bound and the panics.
func GemmTN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm("GemmTN", m, n, k, "km", a, lda, "kn", b, ldb, c, ldc)
	gemmTNImpl.Get()(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// scaleC applies C ← β·C to the m×n block (β = 0 writes zeros).
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if n == 0 { // C may be empty
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		if beta != 1 {
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// gemmNTGeneric is the reference for GemmNT: each C[i][j] is the dot product
// of rows A_i and B_j summed in order of k, then c = α·dot + β·c.
// It works on 2×4 blocks of C so that the Go compiler keeps the eight sums
// in registers.
func gemmNTGeneric(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 { // C ← β·C, as for the other shapes (A and B may be empty)
		scaleC(m, n, beta, c, ldc)
		return
	}
	store := func(i, j int, v float32) {
		p := &c[i*ldc+j]
		if beta == 0 {
			*p = alpha * v
		} else {
			*p = alpha*v + beta*(*p)
		}
	}
	i := 0
	for ; i+2 <= m; i += 2 {
		a0 := a[i*lda : i*lda+k]
		a1 := a[(i+1)*lda : (i+1)*lda+k]
		j := 0
		for ; j+4 <= n; j += 4 {
			b0 := b[j*ldb : j*ldb+k]
			b1 := b[(j+1)*ldb : (j+1)*ldb+k]
			b2 := b[(j+2)*ldb : (j+2)*ldb+k]
			b3 := b[(j+3)*ldb : (j+3)*ldb+k]
			var s00, s01, s02, s03, s10, s11, s12, s13 float32
			for p := range a0 {
				x0, x1 := a0[p], a1[p]
				y0, y1, y2, y3 := b0[p], b1[p], b2[p], b3[p]
				s00 += x0 * y0
				s01 += x0 * y1
				s02 += x0 * y2
				s03 += x0 * y3
				s10 += x1 * y0
				s11 += x1 * y1
				s12 += x1 * y2
				s13 += x1 * y3
			}
			store(i, j, s00)
			store(i, j+1, s01)
			store(i, j+2, s02)
			store(i, j+3, s03)
			store(i+1, j, s10)
			store(i+1, j+1, s11)
			store(i+1, j+2, s12)
			store(i+1, j+3, s13)
		}
		for ; j < n; j++ {
			bj := b[j*ldb : j*ldb+k]
			var s0, s1 float32
			for p := range bj {
				s0 += a0[p] * bj[p]
				s1 += a1[p] * bj[p]
			}
			store(i, j, s0)
			store(i+1, j, s1)
		}
	}
	for ; i < m; i++ {
		ai := a[i*lda : i*lda+k]
		for j := 0; j < n; j++ {
			bj := b[j*ldb : j*ldb+k]
			var s float32
			for p := range ai {
				s += ai[p] * bj[p]
			}
			store(i, j, s)
		}
	}
}

// gemmBlockN is the column block of the axpy-form kernels: a C row segment
// of this many floats stays in L1 while k rows of B stream past it.
const gemmBlockN = 512

// gemmNNGeneric is the reference for GemmNN: C ← β·C, then for each row i
// and each p in order of k, C_i += (α·A[i][p])·B_p (four p at a time, each
// four-term sum added left to right).
func gemmNNGeneric(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	if k == 0 { // A may be empty
		return
	}
	for j0 := 0; j0 < n; j0 += gemmBlockN {
		j1 := min(j0+gemmBlockN, n)
		for i := 0; i < m; i++ {
			ci := c[i*ldc+j0 : i*ldc+j1]
			ai := a[i*lda : i*lda+k]
			axpyRows(ci, ai, alpha, b, ldb, j0, j1)
		}
	}
}

// gemmTNGeneric is the reference for GemmTN: C ← β·C, then for each row i
// and each p in order of k, C_i += (α·A[p][i])·B_p, as GemmNN with A read
// down column i.
func gemmTNGeneric(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	scaleC(m, n, beta, c, ldc)
	var col [4]float32
	for j0 := 0; j0 < n; j0 += gemmBlockN {
		j1 := min(j0+gemmBlockN, n)
		for i := 0; i < m; i++ {
			ci := c[i*ldc+j0 : i*ldc+j1]
			p := 0
			for ; p+4 <= k; p += 4 {
				col = [4]float32{a[p*lda+i], a[(p+1)*lda+i], a[(p+2)*lda+i], a[(p+3)*lda+i]}
				axpy4(ci, &col, alpha, b, ldb, p, j0, j1)
			}
			for ; p < k; p++ {
				axpy1(ci, alpha*a[p*lda+i], b[p*ldb+j0:p*ldb+j1])
			}
		}
	}
}

// axpyRows adds Σ_p (α·a[p])·B_p[j0:j1] to c, four rows of B at a time.
func axpyRows(c, a []float32, alpha float32, b []float32, ldb, j0, j1 int) {
	var col [4]float32
	k := len(a)
	p := 0
	for ; p+4 <= k; p += 4 {
		col = [4]float32{a[p], a[p+1], a[p+2], a[p+3]}
		axpy4(c, &col, alpha, b, ldb, p, j0, j1)
	}
	for ; p < k; p++ {
		axpy1(c, alpha*a[p], b[p*ldb+j0:p*ldb+j1])
	}
}

// axpy4 adds (α·col[0])·B_p + … + (α·col[3])·B_{p+3} over columns j0..j1.
func axpy4(c []float32, col *[4]float32, alpha float32, b []float32, ldb, p, j0, j1 int) {
	w0, w1, w2, w3 := alpha*col[0], alpha*col[1], alpha*col[2], alpha*col[3]
	n := j1 - j0
	b0 := b[p*ldb+j0 : p*ldb+j0+n]
	b1 := b[(p+1)*ldb+j0 : (p+1)*ldb+j0+n]
	b2 := b[(p+2)*ldb+j0 : (p+2)*ldb+j0+n]
	b3 := b[(p+3)*ldb+j0 : (p+3)*ldb+j0+n]
	c = c[:n]
	for j := range c {
		c[j] += w0*b0[j] + w1*b1[j] + w2*b2[j] + w3*b3[j]
	}
}

func axpy1(c []float32, w float32, b []float32) {
	b = b[:len(c)]
	for j := range c {
		c[j] += w * b[j]
	}
}
