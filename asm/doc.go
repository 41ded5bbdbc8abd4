// Package asm holds marginloss's vector kernels, for people writing their
// own layers: GEMM in the three shapes a linear layer needs (GemmNT, GemmNN,
// GemmTN) and the dot products of gathered row pairs (DotRows), the row
// norm and its gradient (L2Norm, Scale, NormalizeBackward), element-wise
// products and sums (Mul, Add), the exponential, log-sum-exp and softmax of a row
// (Exp, MaxSumExp, SoftmaxScaled) and the margin functions of ArcFace,
// CosFace, SphereFace and their relatives (NewMargin, MarginForward), with
// one parameter set or one per row (Margin.SetRows: the adaptive margins of
// AdaFace, MagFace and ElasticFace).
//
// Each function's doc comment gives its reference loop. Every function
// checks its arguments and runs the body for the active instruction-set
// level: AVX-512 or AVX2 on amd64 CPUs that have them, otherwise a body
// written in Go, which is also the reference the assembly bodies are tested
// against. The environment variable MARGINLOSS_SIMD (generic, avx2,
// avx512 or neon), read once per process, caps the level (see
// loss.Backend, which also documents MARGINLOSS_CACHE); building with the tag
// purego leaves only the Go bodies. Levels may differ in the last bits of a
// result, within the bound each function states.
//
// The functions are single-threaded; callers split work across goroutines.
// They panic on inconsistent arguments, naming the operand and the sizes,
// as BLAS libraries do: they are building blocks, and package loss validates
// user input before it reaches them.
package asm
