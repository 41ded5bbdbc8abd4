package optim

import (
	"fmt"

	"github.com/marginloss/marginloss/asm"
	"github.com/marginloss/marginloss/loss"
)

// Fused binds SGD to the State of the class weights W, for the heads'
// fused step (loss.MarginSoftmax.FusedStep): the head steps each tile of W
// as soon as its gradient is complete, and no C×D dw is stored. A head
// steps every row, as Step does (one step count for the tensor); through
// loss.PartialFC only the sampled rows are stepped, as StepRows does (a
// count per row), so a State serves one of the two. The W that results is
// the one of Loss into dw followed by Step (or StepRows on the sampled
// rows): the head computes each dW row with the same operations into its
// scratch block, and the step is the same elementwise kernel, so the two
// agree bit for bit (loss's TestFusedMatchesSeparate).
func (o SGD) Fused(st *State) loss.WeightStepper { return &fused{kind: kindSGD, sgd: o, st: st} }

// Fused binds AdamW to the State of W for the heads' fused step; see
// SGD.Fused.
func (o AdamW) Fused(st *State) loss.WeightStepper { return &fused{kind: kindAdamW, adamw: o, st: st} }

type fused struct {
	kind  kind
	sgd   SGD
	adamw AdamW
	st    *State

	// one call's step
	rows []int32
	cols int
	sc   asm.SGDCoef
	ac   asm.AdamWCoef
}

// BeginWeightStep validates the optimizer and the State against w and
// rows, sizes the State, and fixes the step's scalars.
func (f *fused) BeginWeightStep(w loss.Matrix, rows []int32) error {
	var err error
	if f.kind == kindSGD {
		err = f.sgd.Validate()
	} else {
		err = f.adamw.Validate()
	}
	if err != nil {
		return err
	}
	st := f.st
	rowwise := rows != nil
	if err := st.claim(f.kind, rowwise, len(w.Data), w.Cols); err != nil {
		return err
	}
	if err := checkMatrix("w", w); err != nil {
		return err
	}
	prev := int32(-1)
	for i, r := range rows {
		if r <= prev || int(r) >= w.Rows {
			return fmt.Errorf("%w: fused step rows[%d] = %d: want ascending, unique rows in [0, %d)", loss.ErrParam, i, r, w.Rows)
		}
		prev = r
	}
	st.size(f.kind, rowwise, len(w.Data), w.Cols, w.Rows)
	if f.kind == kindAdamW || f.sgd.Momentum != 0 {
		st.a = need(st.a, len(w.Data))
	}
	if f.kind == kindAdamW {
		st.b = need(st.b, len(w.Data))
	}
	f.rows, f.cols = rows, w.Cols
	if !rowwise {
		if f.kind == kindSGD {
			f.sc = f.sgd.coef(st.t)
		} else {
			f.ac = f.adamw.coef(st.t + 1)
		}
	}
	return nil
}

// StepWeightRows steps the call's rows lo … hi−1. Calls for disjoint ranges
// may run at once: each writes only its rows of p and of the State.
func (f *fused) StepWeightRows(lo, hi int, p, g []float32) {
	st, d := f.st, f.cols
	if f.rows == nil {
		a, b := lo*d, hi*d
		if f.kind == kindSGD {
			var buf []float32
			if st.a != nil && f.sgd.Momentum != 0 {
				buf = st.a[a:b]
			}
			asm.SGDStep(p, g, buf, f.sc)
		} else {
			asm.AdamWStep(p, g, st.a[a:b], st.b[a:b], f.ac)
		}
		return
	}
	j := job{st: st, sgd: f.sgd, adamw: f.adamw, cols: d}
	for i := lo; i < hi; i++ {
		k := i - lo
		j.stepRow(int(f.rows[i]), p[k*d:(k+1)*d], g[k*d:(k+1)*d])
	}
}

// EndWeightStep counts the step of the whole tensor (the rows counted
// theirs as they were stepped).
func (f *fused) EndWeightStep() {
	if f.rows == nil && (f.kind == kindAdamW || f.sgd.Momentum != 0) {
		f.st.t++
	}
	f.rows = nil
}
