package asm

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// panicMessage runs f and returns what it panicked with ("" if nothing).
func panicMessage(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestPanicMessages: every wrapper's panic names the function, the operand
// and the sizes, as BLAS libraries do.
func TestPanicMessages(t *testing.T) {
	f := make([]float32, 64)
	g := NewMargin(MarginArc, 1, 0.5, 0, 0, 0)
	for _, tc := range []struct {
		want string
		call func()
	}{
		// GEMM: lengths, with the shape each operand was checked against
		{"asm: GemmNT: len(c) = 11, want ≥ 12 for m=3, n=4, ldc=4",
			func() { GemmNT(3, 4, 2, 1, f[:6], 2, f[:8], 2, 0, f[:11], 4) }},
		{"asm: GemmNT: len(a) = 5, want ≥ 6 for m=3, k=2, lda=2",
			func() { GemmNT(3, 4, 2, 1, f[:5], 2, f[:8], 2, 0, f[:12], 4) }},
		{"asm: GemmNT: len(b) = 10, want ≥ 11 for n=4, k=2, ldb=3",
			func() { GemmNT(3, 4, 2, 1, f[:6], 2, f[:10], 3, 0, f[:12], 4) }},
		{"asm: GemmNN: len(b) = 7, want ≥ 8 for k=2, n=4, ldb=4",
			func() { GemmNN(3, 4, 2, 1, f[:6], 2, f[:7], 4, 0, f[:12], 4) }},
		{"asm: GemmTN: len(a) = 5, want ≥ 6 for k=2, m=3, lda=3",
			func() { GemmTN(3, 4, 2, 1, f[:5], 3, f[:8], 4, 0, f[:12], 4) }},
		{"asm: GemmTN: len(c) = 13, want ≥ 14 for m=3, n=4, ldc=5",
			func() { GemmTN(3, 4, 2, 1, f[:6], 3, f[:8], 4, 0, f[:13], 5) }},
		// GEMM: strides and dimensions
		{"asm: GemmNT: lda = 2 < k = 3",
			func() { GemmNT(2, 2, 3, 1, f, 2, f, 3, 0, f, 2) }},
		{"asm: GemmNN: ldb = 3 < n = 4",
			func() { GemmNN(2, 4, 3, 1, f, 3, f, 3, 0, f, 4) }},
		{"asm: GemmTN: lda = 1 < m = 2",
			func() { GemmTN(2, 2, 3, 1, f, 1, f, 2, 0, f, 2) }},
		{"asm: GemmTN: ldc = 1 < n = 2",
			func() { GemmTN(2, 2, 3, 1, f, 2, f, 2, 0, f, 1) }},
		{"asm: GemmNT: ldc = 0 < 1",
			func() { GemmNT(0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 0) }},
		{"asm: GemmNN: negative dimension: m = 2, n = -1, k = 3",
			func() { GemmNN(2, -1, 3, 1, f, 3, f, 3, 0, f, 3) }},
		{"asm: GemmNT: len(a) = 64, want ≥ (m−1)·lda + k, which overflows int, for m=3, k=1, lda=" + fmt.Sprint(math.MaxInt),
			func() { GemmNT(3, 1, 1, 1, f, math.MaxInt, f, 1, 0, f, 1) }},
		// elementwise kernels
		{"asm: Scale: len(dst) = 3, want ≥ len(x) = 4",
			func() { Scale(f[:3], f[:4], 2) }},
		{"asm: Mul: len(dst) = 3, want ≥ len(x) = 4",
			func() { Mul(f[:3], f[:4], f[:4]) }},
		{"asm: Mul: len(y) = 2, want ≥ len(x) = 4",
			func() { Mul(f[:4], f[:4], f[:2]) }},
		{"asm: Add: len(dst) = 3, want ≥ len(x) = 4",
			func() { Add(f[:3], f[:4], f[:4]) }},
		{"asm: Add: len(y) = 2, want ≥ len(x) = 4",
			func() { Add(f[:4], f[:4], f[:2]) }},
		{"asm: DotRows: negative dimension: k = -1",
			func() { DotRows(f[:2], -1, f, 4, f, 4, []int32{0, 1}) }},
		{"asm: DotRows: lda = 3, want ≥ max(k, 1) = 4",
			func() { DotRows(f[:2], 4, f, 3, f, 4, []int32{0, 1}) }},
		{"asm: DotRows: ldb = 0, want ≥ max(k, 1) = 1",
			func() { DotRows(f[:2], 0, f, 1, f, 0, []int32{0, 1}) }},
		{"asm: DotRows: len(dst) = 1, want ≥ len(rows) = 2",
			func() { DotRows(f[:1], 4, f, 4, f, 4, []int32{0, 1}) }},
		{"asm: DotRows: len(a) = 7, want ≥ 8 for 2 rows, k=4, lda=4",
			func() { DotRows(f[:2], 4, f[:7], 4, f, 4, []int32{0, 1}) }},
		{"asm: DotRows: rows[1] = 3, but b holds 3 rows of k=4, ldb=5",
			func() { DotRows(f[:2], 4, f, 4, f[:14], 5, []int32{-1, 3}) }},
		{"asm: Exp: len(dst) = 0, want ≥ len(x) = 1",
			func() { Exp(nil, f[:1]) }},
		{"asm: SoftmaxScaled: len(dst) = 5, want ≥ len(z) = 7",
			func() { SoftmaxScaled(f[:5], f[:7], 0, 1) }},
		{"asm: NormalizeBackward: len(dx) = 4, len(dy) = 5, want both len(x) = 5",
			func() { NormalizeBackward(f[:4], f[:5], f[:5], 1, 0) }},
		{"asm: NormalizeBackward: len(dx) = 5, len(dy) = 6, want both len(x) = 5",
			func() { NormalizeBackward(f[:5], f[:6], f[:5], 1, 0) }},
		{"asm: MarginForward: len(phi) = 2, want ≥ len(t) = 3",
			func() { MarginForward(f[:2], nil, f[:3], &g) }},
		{"asm: MarginForward: len(dphi) = 1, want ≥ len(t) = 3",
			func() { MarginForward(f[:3], f[:1], f[:3], &g) }},
		{"asm: MarginForward: g is nil",
			func() { MarginForward(f[:3], nil, f[:3], nil) }},
	} {
		require.Equal(t, tc.want, panicMessage(tc.call))
	}
	// and nothing for operands that fit exactly (empty ones included)
	for _, call := range []func(){
		func() { GemmNT(3, 4, 2, 1, f[:6], 2, f[:8], 2, 0, f[:12], 4) },
		func() { GemmNN(3, 4, 2, 1, f[:6], 2, f[:8], 4, 0, f[:12], 4) },
		func() { GemmTN(3, 4, 2, 1, f[:6], 3, f[:8], 4, 0, f[:12], 4) },
		func() { GemmTN(0, 0, 0, 1, nil, 1, nil, 1, 0, nil, 1) },
		func() { GemmNT(2, 3, 0, 1, nil, 1, nil, 1, 0, f[:6], 3) },
		func() { Scale(f[:4], f[:4], 2) },
		func() { Exp(nil, nil) },
		func() { SoftmaxScaled(f[:7], f[:7], 0, 1) },
		func() { NormalizeBackward(f[:5], f[:5], f[:5], 1, 0) },
		func() { MarginForward(f[:3], f[:3], f[:3], &g) },
		func() { MarginForward(f[:3], nil, f[:3], &g) },
	} {
		require.Empty(t, panicMessage(call))
	}
}
