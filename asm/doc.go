// Package asm holds marginloss's four kernel families: row L2
// normalisation, GEMM (cosine and dot products), arccos-margin application
// and log-sum-exp with a vectorised exp.
//
// Each exported function is a dispatching wrapper: it checks lengths, picks
// the body for the active level (see internal/simd) and calls it. Every body
// has exactly one generic twin, written in Go, whose code is the reference
// the assembly versions are tested against. Kernels are single-threaded;
// callers split work across goroutines.
//
// Wrappers panic on inconsistent lengths, like the built-in copy would on an
// out-of-range slice: they are building blocks, and the loss package
// validates user input before it reaches them.
package asm
