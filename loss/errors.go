package loss

import "errors"

// Sentinel errors. Every error the package returns wraps exactly one of
// them (test with errors.Is) and adds context: which argument, row or
// parameter was at fault.
var (
	// ErrShape: a matrix's dimensions disagree with another argument, or
	// len(Data) != Rows*Cols, or a gradient matrix has the wrong shape.
	ErrShape = errors.New("loss: shape mismatch")
	// ErrLabel: a label is outside [0, C), labels has the wrong length, or
	// a finite target of Focal.Sigmoid is outside [0, 1].
	ErrLabel = errors.New("loss: label out of range")
	// ErrNonFinite: an input holds NaN or ±Inf (the one rule for every
	// float input: embeddings, weights, logits, targets, cosines, centres,
	// statistics and the old values of accumulated gradients; a finite
	// value outside its domain is ErrLabel or ErrParam), a row's norm overflows
	// float32, or finite inputs would drive the loss or a gradient past
	// float32 (the data, not the parameters, are out of range: for example
	// L-Softmax logits ‖W_j‖·‖x_i‖ beyond 3.4e38). The check runs before
	// any output is written, so outputs stay untouched.
	ErrNonFinite = errors.New("loss: non-finite input")
	// ErrParam: a hyper-parameter is out of its range (s ≤ 0, margin out of
	// range, s·max|φ| too large, λ < 0, γ < 0, α out of range, unknown
	// reduction, a Center with Alpha outside (0, 1], SubCenters or
	// LabelSmoothing out of range, a PartialFC or ShardedHead SampleRate
	// out of range), or a value outside its domain (a cosine beyond
	// [−1, 1] for LossFromCosines), or a call out of order (ShardedHead's
	// Backward without its Forward, with another configuration than the
	// Forward's, or with statistics that cannot be the combine of that
	// Forward's).
	ErrParam = errors.New("loss: parameter out of range")
	// ErrOverlap: an output shares memory with an input or with another
	// output. Only the exact in-place forms documented on each method are
	// allowed (dx and x the same slice for MarginSoftmax.Loss and
	// Center.Loss, dcos and cos for LossFromCosines, dlogits and logits the
	// same slice for Focal).
	ErrOverlap = errors.New("loss: output overlaps an input or another output")
)
