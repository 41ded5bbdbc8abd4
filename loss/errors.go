package loss

import "errors"

// Sentinel errors. Every error the package returns wraps exactly one of
// them (test with errors.Is) and adds context: which argument, row or
// parameter was at fault.
var (
	// ErrShape: a matrix's dimensions disagree with another argument, or
	// len(Data) != Rows*Cols, or a gradient matrix has the wrong shape.
	ErrShape = errors.New("loss: shape mismatch")
	// ErrLabel: a label is outside [0, C), or labels has the wrong length.
	ErrLabel = errors.New("loss: label out of range")
	// ErrNonFinite: an input holds NaN or ±Inf (or a row whose norm
	// overflows float32).
	ErrNonFinite = errors.New("loss: non-finite input")
	// ErrParam: a hyper-parameter is out of its range (s ≤ 0, margin out of
	// range, λ < 0, γ < 0, α out of range, unknown reduction).
	ErrParam = errors.New("loss: parameter out of range")
)
