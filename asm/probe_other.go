//go:build purego || !amd64

package asm

import "github.com/marginloss/marginloss/internal/simd"

// fmaPeakLoop reports false: this build has no FMA probe.
func fmaPeakLoop(l simd.Level, iters int) (flopsPerIter int, ok bool) { return 0, false }
