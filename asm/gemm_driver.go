package asm

import "github.com/marginloss/marginloss/internal/simd"

// gemmOp names which operands are transposed.
type gemmOp uint8

const (
	gemmOpNT gemmOp = iota // A m×k, B n×k
	gemmOpNN               // A m×k, B k×n
	gemmOpTN               // A k×m, B k×n
)

// gemmDriver is a level's blocked GEMM driver, registered in gemmDrivers by
// the level's init, so that tests reach every loop and edge of the driver
// with small shapes and benchmarks time its parts.
type gemmDriver interface {
	// with returns the NT, NN and TN bodies blocked with depth passes of at
	// most kc, row blocks of mc and column blocks of nc, packing even the
	// tiny shapes that the level's table leaves to generic; viaTile sends
	// every tile through the L1 tile buffer (the epilogue seam).
	with(kc, mc, nc int, viaTile bool) [3]gemmFunc
	// tile is the micro-kernel's MR×NR.
	tile() (mr, nr int)
	// blocking is the level's own kc, mc and nc.
	blocking() (kc, mc, nc int)
	// microKernel runs the micro-kernel once on packed operands.
	microKernel(mr, kc int, a, b, c []float32, ldc int, alpha, beta float32)
}

var gemmDrivers = map[simd.Level]gemmDriver{}
