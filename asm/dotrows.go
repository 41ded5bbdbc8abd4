package asm

// DotRows computes, for each i with rows[i] ≥ 0, the dot product of row i
// of A with row rows[i] of B, each k floats long (row strides lda and ldb):
//
//	for i, r := range rows {
//		if r < 0 {
//			continue // dst[i] is not touched
//		}
//		var s float32
//		for p := 0; p < k; p++ {
//			s += a[i*lda+p] * b[int(r)*ldb+p]
//		}
//		dst[i] = s
//	}
//
// (the heads' target logits: each example's x̂ against its own class's row
// of W). Each sum runs in order of p, so every element has exactly the bits
// of GemmNT(1, 1, k, 1, a[i*lda:], lda, b[r*ldb:], ldb, 0, dst[i:], 1) at
// every level; DotRows runs four rows' sums at once instead of paying a
// GEMM call per row. It panics when k is negative, a stride is less than
// k (or 1), dst is shorter than rows, A does not hold len(rows) rows, or a
// row index is at or past B's rows.
func DotRows(dst []float32, k int, a []float32, lda int, b []float32, ldb int, rows []int32) {
	checkDotRows(len(dst), k, len(a), lda, len(b), ldb, rows)
	if k == 0 {
		for i, r := range rows {
			if r >= 0 {
				dst[i] = 0
			}
		}
		return
	}
	var pend [4]int // rows waiting for a group of four
	n := 0
	for i, r := range rows {
		if r < 0 {
			continue
		}
		pend[n] = i
		n++
		if n < len(pend) {
			continue
		}
		i0, i1, i2, i3 := pend[0], pend[1], pend[2], pend[3]
		s0, s1, s2, s3 := dot4(k, a[i0*lda:], a[i1*lda:], a[i2*lda:], a[i3*lda:],
			b[int(rows[i0])*ldb:], b[int(rows[i1])*ldb:], b[int(rows[i2])*ldb:], b[int(rows[i3])*ldb:])
		dst[i0], dst[i1], dst[i2], dst[i3] = s0, s1, s2, s3
		n = 0
	}
	for _, i := range pend[:n] {
		ai, o := a[i*lda:i*lda+k], int(rows[i])*ldb
		bi := b[o : o+k]
		var s float32
		for p, x := range ai {
			s += x * bi[p]
		}
		dst[i] = s
	}
}

// dot4 is four sequential dot products of k floats, interleaved so that
// their additions' latencies overlap; a function of its own so that its
// loop keeps every pointer and the index in registers.
func dot4(k int, a0, a1, a2, a3, b0, b1, b2, b3 []float32) (s0, s1, s2, s3 float32) {
	a0, a1, a2, a3 = a0[:k], a1[:k], a2[:k], a3[:k]
	b0, b1, b2, b3 = b0[:k], b1[:k], b2[:k], b3[:k]
	for p := 0; p < k; p++ {
		s0 += a0[p] * b0[p]
		s1 += a1[p] * b1[p]
		s2 += a2[p] * b2[p]
		s3 += a3[p] * b3[p]
	}
	return s0, s1, s2, s3
}

// checkDotRows panics unless DotRows's operands fit: it runs before
// anything is written.
func checkDotRows(dst, k, a, lda, b, ldb int, rows []int32) {
	if k < 0 {
		panicf("DotRows: negative dimension: k = %d", k)
	}
	if lda < max(k, 1) {
		panicf("DotRows: lda = %d, want ≥ max(k, 1) = %d", lda, max(k, 1))
	}
	if ldb < max(k, 1) {
		panicf("DotRows: ldb = %d, want ≥ max(k, 1) = %d", ldb, max(k, 1))
	}
	checkAtLeast("DotRows", "dst", dst, "rows", len(rows))
	if m := len(rows); m > 0 && a < (m-1)*lda+k {
		panicf("DotRows: len(a) = %d, want ≥ %d for %d rows, k=%d, lda=%d", a, (m-1)*lda+k, m, k, lda)
	}
	for i, r := range rows {
		if r >= 0 && b < int(r)*ldb+k {
			panicf("DotRows: rows[%d] = %d, but b holds %d rows of k=%d, ldb=%d", i, r, rowsHeld(b, k, ldb), k, ldb)
		}
	}
}

// rowsHeld is how many rows of k floats at stride ld a slice of n floats
// holds.
func rowsHeld(n, k, ld int) int {
	if n < k {
		return 0
	}
	return (n-k)/ld + 1
}
