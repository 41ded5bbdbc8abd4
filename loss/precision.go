package loss

import (
	"fmt"

	"github.com/marginloss/marginloss/asm"
)

// Precision is the arithmetic of a head's three GEMMs (the logits X̂·Ŵᵀ,
// dX̂ and dŴ); see the package doc's section on precision.
type Precision uint8

const (
	// Float32, the zero value, is the exact path: float32 operands and
	// sums.
	Float32 Precision = iota
	// BFloat16 rounds the operands of each of the head's GEMMs to
	// bfloat16 (round to nearest even) as they are packed, and sums their
	// exact products in float32. Norms, margins, the target logits, the
	// log-sum-exp, the softmax and the loss stay float32.
	BFloat16
)

// String returns "float32" or "bfloat16" (or Precision(n) for another n).
func (p Precision) String() string {
	switch p {
	case Float32:
		return "float32"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("Precision(%d)", uint8(p))
}

// BFloat16Native reports whether BFloat16 runs on bf16 dot-product
// instructions (AMX tiles on Intel Xeons with AMX-BF16 where Linux grants
// the tile state, AVX512_BF16's VDPBF16PS on AMD's Zen 4 and 5, arm64's
// BFDOT) on this CPU, in this build and at the active kernel level
// (Backend). Where it does not (no such instructions, or Intel's
// VDPBF16PS without AMX, which runs at half the FMA rate), BFloat16 gives
// the same numerics on the float32 kernels, with no speed gain.
func BFloat16Native() bool { return asm.BF16Native() }

// check returns an ErrParam error for a Precision outside the constants.
func (p Precision) check(name string) error {
	if p != Float32 && p != BFloat16 {
		return fmt.Errorf("%w: %s Precision = %v, want Float32 or BFloat16", ErrParam, name, p)
	}
	return nil
}

// The head's GEMMs at its precision: packX and packXT pack x̂ as the left
// operand of the logits and the right one of dŴ, gemmNN is dX̂'s product.

func (h *headWorkspace) packX() {
	if h.prec == BFloat16 {
		h.px.PackBF16(h.n, h.d, h.xhat, h.d)
		return
	}
	h.px.Pack(h.n, h.d, h.xhat, h.d)
}

func (h *headWorkspace) packXT() {
	if h.prec == BFloat16 {
		h.pxT.PackBF16(h.n, h.d, h.xhat, h.d)
		return
	}
	h.pxT.Pack(h.n, h.d, h.xhat, h.d)
}

func (h *headWorkspace) gemmNN(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if h.prec == BFloat16 {
		asm.GemmNNBF16(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	asm.GemmNN(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
