package loss

import "github.com/marginloss/marginloss/asm"

// WeightStepper is an optimizer step of the class weights W that a head
// applies inside its backward pass (MarginSoftmax.FusedStep), one tile of
// rows at a time, as soon as the tile's gradient is complete: the C×D
// gradient of W is never stored, so dw may be nil. Package optim's
// optimizers bound to their state implement it (optim.SGD.Fused,
// optim.AdamW.Fused); package loss only calls it.
//
// A call of Loss that steps W calls BeginWeightStep once, after every
// input has been validated and before anything is written, then
// StepWeightRows for disjoint row ranges that together cover the stepped
// rows once, possibly from several goroutines at a time, then
// EndWeightStep. When BeginWeightStep fails, Loss returns its error and
// writes nothing.
type WeightStepper interface {
	// BeginWeightStep starts one step of w. rows lists the rows of w that
	// the call steps (ascending, unique; Partial FC's sampled rows), or is
	// nil when it steps every row.
	BeginWeightStep(w Matrix, rows []int32) error
	// StepWeightRows steps the call's rows lo … hi−1 (positions in rows,
	// or rows of w when rows is nil): p holds their parameters and g their
	// gradients, (hi−lo)·w.Cols floats each, row after row. p may be a
	// copy of those rows of w (Partial FC steps its gathered rows and
	// writes them back).
	StepWeightRows(lo, hi int, p, g []float32)
	// EndWeightStep ends the step that BeginWeightStep started.
	EndWeightStep()
}

// gradW is backwardShard's last stage of a tile with classes j0..j1 when
// dw or a fused step asks for the gradient of W: gradWTile writes dW
// where dw is non-nil, then the step reads it there; without dw the tile's
// gradient goes through the shard's scratch block, row block by row block,
// each block stepped as soon as it is complete. The rows of W stepped here
// are read by no later part of the backward pass: a W row enters the
// logits, dX̂ and its own normalisation backward only within its tile, and
// all of those come before.
func (h *headWorkspace) gradW(st *shardState, g, scratch []float32, j0, j1 int) {
	d := h.d
	if h.dw != nil {
		h.gradWTile(st, g, scratch, j0, j1)
		if h.step != nil {
			h.step.StepWeightRows(j0, j1, h.w.Data[j0*d:j1*d], h.dw.Data[j0*d:j1*d])
		}
		return
	}
	cw := j1 - j0
	rb := min(cw, max(1, fusedBlockFloats/d)) // the whole tile, unless D is large
	st.acc = grow(st.acc, rb*d)
	for b0 := 0; b0 < cw; b0 += rb {
		m := min(rb, cw-b0)
		blk := st.acc[:m*d]
		asm.GemmTNPacked(m, 1, g[b0:], cw, &h.pxT, 0, blk, d)
		for j := 0; j < m; j++ {
			row := blk[j*d : (j+1)*d]
			h.normBackwardW(row, row, st.colRad[b0+j], j0+b0+j)
		}
		lo := j0 + b0
		h.step.StepWeightRows(lo, lo+m, h.w.Data[lo*d:(lo+m)*d], blk)
	}
}

// fusedBlockFloats bounds the fused step's scratch block per class shard
// (1 MiB): at N = 256, D = 512 a whole tile of 128 rows, in one GEMM.
const fusedBlockFloats = 256 << 10

// checkStepOverlap: a fused step writes w, so w must not share memory with
// x or labels either (dx and dw are checked against w already).
func checkStepOverlap(step WeightStepper, x, w Matrix, labels []int32) error {
	if step == nil {
		return nil
	}
	outs := [...]span{spanOf("w (FusedStep writes it)", w.Data)}
	ins := [...]span{spanOf("x", x.Data), spanOf("labels", labels)}
	return checkOverlap(outs[:], ins[:])
}

// rowStepper is Partial FC's view of a user's WeightStepper: the head
// steps the gathered rows wS (its own rows 0…m−1) and the user's stepper
// sees the rows of the caller's W they came from.
type rowStepper struct {
	user WeightStepper
	w    Matrix  // the caller's W
	rows []int32 // the W row of each gathered row, ascending
}

func (r *rowStepper) BeginWeightStep(Matrix, []int32) error {
	return r.user.BeginWeightStep(r.w, r.rows)
}

func (r *rowStepper) StepWeightRows(lo, hi int, p, g []float32) {
	r.user.StepWeightRows(lo, hi, p, g)
}

func (r *rowStepper) EndWeightStep() { r.user.EndWeightStep() }
