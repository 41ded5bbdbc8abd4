package fuzz

import (
	"testing"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/internal/simd"
)

// asm keeps its kernel tables and test hooks unexported and registers them
// in internal/simd by name (asm/hooks.go lists the names); the targets look
// them up there.

// table returns asm's kernel table registered as name, whose bodies have
// type F.
func table[F any](tb testing.TB, name string) *simd.Table[F] {
	tb.Helper()
	tab, err := simd.TableOf[F](name)
	if err != nil {
		tb.Fatal(err)
	}
	return tab
}

// hook returns the asm test hook registered as name.
func hook[T any](tb testing.TB, name string) T {
	tb.Helper()
	v, err := simd.Lookup[T](name)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// The signatures of asm's kernel bodies.
type (
	gemmBody   = func(m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	marginBody = func(phi, dphi, t []float32, g *asm.Margin)
)

// marginErrorBound is the type of asm's "Margin.ErrorBound" hook: the bound
// every vector level of MarginForward meets at t.
type marginErrorBound = func(g *asm.Margin, t float32) (phi, dphi float64)

// marginRowErrorBound is the type of asm's "Margin.RowErrorBound" hook: the
// bound of row i of a per-row margin.
type marginRowErrorBound = func(g *asm.Margin, i int, t float32) (phi, dphi float64)
