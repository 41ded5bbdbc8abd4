// Package loss implements margin-based softmax losses (ArcFace, CosFace,
// the combined margin, SphereFace and L-Softmax, and the adaptive margins
// AdaFace, MagFace, ElasticFace and CurricularFace as their authors' code
// computes them), focal losses and center loss, forward and backward, for training embeddings on CPUs; with
// sub-centers, label smoothing, a cosine-level entry (LossFromCosines),
// Partial FC sampling (PartialFC) and a class-sharded, model-parallel head
// (ShardedHead) for very many classes. MarginSoftmax.FusedStep applies an
// optimizer step to W inside the backward pass (a WeightStepper; package
// optim provides SGD and AdamW), so the C×D gradient of W is never stored.
//
// Every loss returns the reduced loss value and, where asked, writes exact
// gradients (what autograd gives through the stated formula) into
// caller-owned matrices. Work is split over up to GOMAXPROCS goroutines
// with a partition that depends only on the shapes, and every reduction
// runs in a fixed order, so results are bitwise identical for any
// GOMAXPROCS. Steady-state calls do not allocate.
//
// # Numerical conventions
//
//   - Zero rows: where a row of x or W has norm 0, its cos θ is taken as 0
//     and its gradient through the normalisation is 0 (the row gets a zero
//     gradient from that path). Rows with norm below 2^-100 (≈ 7.9e-31)
//     count as zero rows, since 1/‖x‖ would overflow the gradients.
//     L-Softmax's non-target logits W_j·x are linear, so a zero W row still
//     gets its exact gradient Σ_i G_ij·x_i from the rows it is not the label
//     of, and a zero row of x is not normalised at all: it keeps its exact
//     logits W_j·x and gradient Σ_j G_ij·W_j (with m = 1 the target's too,
//     since that logit is W_y·x; with m ≥ 2 the target's cosine is taken as
//     0 and gets no gradient).
//   - Confident rows keep their precision: the target logit is left out of
//     the online log-sum-exp, and the row loss is log1p(Σ_{j≠y} e^(z_j−z_y)).
//   - Probabilities are taken relative to the row's largest logit M,
//     p_j = e^(z_j − M)/Σ_k e^(z_k − M), never from a log-sum-exp rounded to
//     float32: tied logits get exactly equal probabilities at any
//     magnitude (at |z| ≈ 1e7 a rounded log-sum-exp moves them by e^±0.5).
//   - acos-based margins (ArcFace, CombinedMargin) clamp t = cos θ to
//     [−1+ε, 1−ε] with ε = 1e-6 inside dφ/dt only, so gradients stay finite
//     at t = ±1; for |t| < 1 − ε they are exact.
//   - SphereFace and L-Softmax evaluate cos(mθ) as the Chebyshev polynomial
//     T_m(cos θ), so ψ and its derivative need no acos.
//
// # Precision
//
// MarginSoftmax.Precision selects the arithmetic of the head's three GEMMs.
// Float32, the zero value, is exact float32. BFloat16 is defined as:
//
//   - the operands of each GEMM are rounded to bfloat16, round to nearest
//     even (subnormals to signed zero, NaN kept), as they are packed: x̂
//     and the rows W_j for the logits (the 1/‖W_j‖ and s scales are applied
//     in float32 to the product), the cosine-space gradient tile
//     G_ij/‖W_j‖ and W_j for dX̂, and G_ij and x̂_i for dŴ;
//   - their products (exact in float32) are summed in float32;
//   - everything else stays float32 exactly as with Float32: the norms,
//     the target cosines and margins (the target logit is float32), the
//     log-sum-exp, the softmax, the loss, the normalisation backward.
//
// No bf16 copy of W outlives one packed panel. Where BFloat16Native
// reports true, the products run on bf16 dot-product instructions (AMX
// tiles' TDPBF16PS on Intel Xeons with AMX-BF16, AVX512_BF16's VDPBF16PS
// on AMD's Zen 4 and 5, arm64's BFDOT); elsewhere the same rounded operands go
// through the float32 kernels, with the same numerics up to the order of
// the float32 sums. Measured against float64 references (the tests in
// precision_test.go, at every level and both tile paths, with sub-centers,
// label smoothing, PartialFC and ShardedHead): on random and trained-like
// inputs with D = 64 and 128 the loss is within 7.6e-5·max(1, |L|) and the
// gradients within 5.2e-3 norm-wise (‖Δ‖/‖g‖), inside the tested bounds of
// 1e-3·max(1, |L|) and 5e-2; on the PyTorch goldens with D ≥ 8, 1.1e-2
// norm-wise. At tiny D a cosine's rounding does not average out: the loss
// then obeys the worst case 2·s·2⁻⁸ per row (2·‖x_i‖·max‖W_j‖·2⁻⁸ for
// SphereFace and L-Softmax). The adaptive heads (adaptive_bf16_test.go)
// meet the same bounds on random inputs; on trained-like inputs the
// rounding itself moves AdaFace's loss by up to 2.3e-3·max(1, |L|) and
// ElasticArcFace's by 1.5e-3 (a float64 evaluation of the definition, with
// the operands rounded, gives the same figures within 3e-7: a row whose
// target logit the margin pushes far down leaves the loss to the rounded
// non-target logits), while their gradients stay within 1.0e-2; their
// state and margins are bitwise Float32's (norms and target cosines are
// float32 in both). Every contract below holds in BFloat16 too.
//
// # Contract of every call
//
//   - Bad input returns an error wrapping one of the sentinel errors
//     (ErrShape, ErrLabel, ErrNonFinite, ErrParam, ErrOverlap) and leaves
//     every output untouched: all checks run before anything is written.
//   - A nil error always comes with a finite loss and finite gradients.
//     Parameters that alone would overflow float32 are rejected with
//     ErrParam (MarginSoftmax's MaxLogit, Focal's MaxFocalGamma); finite
//     data that would still overflow (huge norms, a Sum over huge losses)
//     are rejected with ErrNonFinite, from bounds computed before the
//     outputs are written.
//   - Outputs must not share memory with inputs or with each other
//     (ErrOverlap), except the in-place forms each method documents: dx
//     may be x for MarginSoftmax.Loss and Center.Loss, dcos may be cos for
//     LossFromCosines, dlogits may be logits for Focal.
//   - Every input is validated whatever the batch size: an empty batch
//     with a NaN in w or Centers is an error; a valid empty batch returns 0
//     and zeroes the gradients asked for.
//   - Work is bounded by the number of elements, never by Rows alone.
//   - No reference to the caller's matrices survives a call, whether it
//     succeeds or fails.
//   - Gradients overwrite dx, dw, dlogits by default; with Accumulate they
//     are added to what the buffers hold (whose old values must be finite).
//   - Validate checks a configuration without data, so that a program can
//     reject bad flags before it loads anything.
package loss
