package asm

import (
	"fmt"
	"math"
)

// The wrappers' argument checks. They panic, as BLAS libraries do, with a
// message that names the function, the operand and the sizes:
//
//	asm: GemmNT: len(c) = 11, want ≥ 12 for m=3, n=4, ldc=4
//	asm: Exp: len(dst) = 3, want ≥ len(x) = 4

// panicf panics with "asm: " and the formatted message. It is kept out of
// line so that the checks cost the wrappers only a compare and a branch.
//
//go:noinline
func panicf(format string, args ...any) {
	panic(fmt.Sprintf("asm: "+format, args...))
}

// checkAtLeast panics unless len(dst) ≥ len(src) (named dstName, srcName).
func checkAtLeast(fn, dstName string, dst int, srcName string, src int) {
	if dst < src {
		panicf("%s: len(%s) = %d, want ≥ len(%s) = %d", fn, dstName, dst, srcName, src)
	}
}

// checkGemm panics unless m, n, k ≥ 0 and each operand fits its shape.
// aShape and bShape name the stored rows and columns of A and B by their
// dimensions ("mk": m×k; "" skips a packed operand); C is always m×n.
func checkGemm(fn string, m, n, k int, aShape string, a []float32, lda int, bShape string, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panicf("%s: negative dimension: m = %d, n = %d, k = %d", fn, m, n, k)
	}
	dim := func(d byte) int {
		switch d {
		case 'm':
			return m
		case 'n':
			return n
		}
		return k
	}
	if aShape != "" { // "": a packed operand, sized by its Pack
		checkOperand(fn, "a", "lda", aShape, dim(aShape[0]), dim(aShape[1]), a, lda)
	}
	if bShape != "" {
		checkOperand(fn, "b", "ldb", bShape, dim(bShape[0]), dim(bShape[1]), b, ldb)
	}
	checkOperand(fn, "c", "ldc", "mn", m, n, c, ldc)
}

// checkOperand panics unless s holds a rows×cols row-major matrix with row
// stride ld ≥ max(1, cols): len(s) ≥ (rows−1)·ld + cols when the matrix is
// not empty. shape names rows and cols by their dimensions.
func checkOperand(fn, name, ldName, shape string, rows, cols int, s []float32, ld int) {
	if ld < cols {
		panicf("%s: %s = %d < %c = %d", fn, ldName, ld, shape[1], cols)
	}
	if ld < 1 {
		panicf("%s: %s = %d < 1", fn, ldName, ld)
	}
	if rows == 0 || cols == 0 {
		return
	}
	// len(s) ≥ (rows−1)·ld + cols, without overflowing int
	if len(s) >= cols && (len(s)-cols)/ld >= rows-1 {
		return
	}
	if rows-1 > (math.MaxInt-cols)/ld {
		panicf("%s: len(%s) = %d, want ≥ (%c−1)·%s + %c, which overflows int, for %c=%d, %c=%d, %s=%d",
			fn, name, len(s), shape[0], ldName, shape[1], shape[0], rows, shape[1], cols, ldName, ld)
	}
	panicf("%s: len(%s) = %d, want ≥ %d for %c=%d, %c=%d, %s=%d",
		fn, name, len(s), (rows-1)*ld+cols, shape[0], rows, shape[1], cols, ldName, ld)
}
