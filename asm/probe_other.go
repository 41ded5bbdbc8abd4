//go:build purego || !amd64

package asm

import "github.com/marginloss/marginloss/internal/simd"

// FMAPeakLoop reports false: this build has no FMA probe.
func FMAPeakLoop(l simd.Level, iters int) (flopsPerIter int, ok bool) { return 0, false }
