package optim

import (
	"fmt"
	"slices"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/loss"
)

// *State saves itself into a checkpoint: the methods live here, beside
// the unexported fields and the invariants that claim and size keep,
// rather than in an adapter in package checkpoint, which would need
// accessors that let any caller desynchronise a State's kind, sizes,
// buffers and counts. The dependency runs optim → checkpoint → loss: the
// format package knows no optimizer.
var _ checkpoint.State = (*State)(nil)

// stateFormat is the version of the layout SaveState writes.
const stateFormat = 1

// SaveState writes st under prefix, so that LoadState (in this process or
// another) restores it and the steps that follow give the same bits as if
// it had never been saved; *State implements checkpoint.State. The tensors,
// named as torch.optim names optimizer.state[p]'s entries:
//
//	prefix+"state"            I64 [5]: format (1), kind (0 never stepped, 1 SGD, 2 AdamW),
//	                          rowwise (1 after StepRows, 0 after Step), elements, columns
//	                          (W's through a head's fused step records them; Step ignores them)
//	prefix+"step"             I64: Step's count (a scalar), or StepRows' count per row ([rows])
//	prefix+"momentum_buffer"  F32: SGD's buffer, once a step with momentum sized it
//	prefix+"exp_avg"          F32: AdamW's first moment
//	prefix+"exp_avg_sq"       F32: AdamW's second moment
//
// The buffers have the parameter's shape: [rows, columns] after StepRows,
// [elements] after Step. A State never stepped writes the "state" tensor
// alone.
func (st *State) SaveState(w checkpoint.Writer, prefix string) error {
	if st == nil {
		return fmt.Errorf("%w: nil *State", loss.ErrParam)
	}
	rowwise := int64(0)
	if st.rowwise {
		rowwise = 1
	}
	hdr := []int64{stateFormat, int64(st.kind), rowwise, int64(st.n), int64(st.cols)}
	if err := w.PutInt64(prefix+"state", hdr, len(hdr)); err != nil {
		return err
	}
	if st.kind == kindNone {
		return nil
	}
	shape := []int{st.n}
	if st.rowwise {
		shape = []int{len(st.rowT), st.cols}
		if err := w.PutInt64(prefix+"step", st.rowT, len(st.rowT)); err != nil {
			return err
		}
	} else if err := w.PutInt64(prefix+"step", []int64{st.t}); err != nil {
		return err
	}
	for _, b := range st.buffers() {
		if *b.buf == nil {
			continue
		}
		if err := w.PutFloat32(prefix+b.name, *b.buf, shape...); err != nil {
			return err
		}
	}
	return nil
}

// namedBuffer is one of a State's buffers with its tensor name.
type namedBuffer struct {
	name string
	buf  *[]float32
}

// buffers lists the buffers st's kind keeps.
func (st *State) buffers() []namedBuffer {
	switch st.kind {
	case kindSGD:
		return []namedBuffer{{"momentum_buffer", &st.a}}
	case kindAdamW:
		return []namedBuffer{{"exp_avg", &st.a}, {"exp_avg_sq", &st.b}}
	}
	return nil
}

// LoadState restores into st the State that SaveState wrote under prefix.
// A State never stepped accepts any saved State; one already sized accepts
// only a State of the same optimizer, form (Step or StepRows) and size, as
// a step would (loss.ErrParam for another optimizer, loss.ErrShape for
// another form or size). Every tensor is read and checked (dtype, shape,
// counts ≥ 0, the buffers the kind needs, consistency with the header)
// before st changes: on error, which wraps loss.ErrShape, loss.ErrParam,
// checkpoint.ErrMissing or checkpoint.ErrFormat and names the tensor, st is
// untouched.
func (st *State) LoadState(r checkpoint.Reader, prefix string) error {
	if st == nil {
		return fmt.Errorf("%w: nil *State", loss.ErrParam)
	}
	var hdr [5]int64
	if err := r.Int64(prefix+"state", hdr[:], len(hdr)); err != nil {
		return err
	}
	format, k, rw, n, cols := hdr[0], hdr[1], hdr[2], hdr[3], hdr[4]
	bad := func(why string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", checkpoint.ErrFormat, prefix+"state", fmt.Sprintf(why, args...))
	}
	switch {
	case format != stateFormat:
		return bad("format %d, this package reads %d", format, stateFormat)
	case k < int64(kindNone) || k > int64(kindAdamW):
		return bad("unknown optimizer kind %d (0 none, 1 SGD, 2 AdamW)", k)
	case rw != 0 && rw != 1:
		return bad("rowwise = %d, want 0 or 1", rw)
	case n < 0 || cols < 0 || int64(int(n)) != n || int64(int(cols)) != cols:
		return bad("%d elements, %d columns", n, cols)
	case rw == 1 && (cols == 0 && n != 0 || cols != 0 && n%cols != 0):
		return bad("%d elements do not make rows of %d columns", n, cols)
	case k == int64(kindNone) && (rw != 0 || n != 0 || cols != 0):
		return bad("a State never stepped with sizes (%d, %d, %d)", rw, n, cols)
	}
	saved := State{kind: kind(k), rowwise: rw == 1, n: int(n), cols: int(cols)}
	if st.kind != kindNone {
		if saved.kind == kindNone {
			return fmt.Errorf("%w: %q holds a State never stepped; this one was stepped by %v", loss.ErrParam, prefix+"state", st.kind)
		}
		if err := st.claim(saved.kind, saved.rowwise, saved.n, saved.cols); err != nil {
			return fmt.Errorf("loading %q: %w", prefix, err)
		}
	}
	if saved.kind == kindNone {
		*st = State{}
		return nil
	}
	rows := 0
	if saved.rowwise {
		// The row count is the per-row step counts' length (a matrix with
		// no columns still has rows).
		info, ok := r.Info(prefix + "step")
		if !ok {
			return fmt.Errorf("%w: %q", checkpoint.ErrMissing, prefix+"step")
		}
		if len(info.Shape) != 1 || saved.cols > 0 && info.Shape[0] != saved.n/saved.cols {
			return fmt.Errorf("%w: %q has shape %v, want one count per row of the %d×%d parameter", loss.ErrShape, prefix+"step", info.Shape, saved.n/max(saved.cols, 1), saved.cols)
		}
		rows = info.Shape[0]
		saved.rowT = make([]int64, rows)
		if err := r.Int64(prefix+"step", saved.rowT, rows); err != nil {
			return err
		}
		for i, t := range saved.rowT {
			if t < 0 {
				return fmt.Errorf("%w: %q: row %d has step count %d", checkpoint.ErrFormat, prefix+"step", i, t)
			}
		}
	} else {
		var t [1]int64
		if err := r.Int64(prefix+"step", t[:]); err != nil {
			return err
		}
		if info, _ := r.Info(prefix + "step"); len(info.Shape) != 0 {
			return fmt.Errorf("%w: %q has shape %v, Step's count is a scalar", loss.ErrShape, prefix+"step", info.Shape)
		}
		if t[0] < 0 {
			return fmt.Errorf("%w: %q: step count %d", checkpoint.ErrFormat, prefix+"step", t[0])
		}
		saved.t = t[0]
	}
	shape := []int{saved.n}
	if saved.rowwise {
		shape = []int{rows, saved.cols}
	}
	for _, b := range saved.buffers() {
		info, ok := r.Info(prefix + b.name)
		if !ok {
			continue // checked below: only SGD without momentum lacks its buffer
		}
		// The shape first: saved.n is the record's claim, and a buffer of
		// that size is allocated only for a tensor the file really holds.
		if !slices.Equal(info.Shape, shape) {
			return fmt.Errorf("%w: %q has shape %v, want %v", loss.ErrShape, prefix+b.name, info.Shape, shape)
		}
		*b.buf = make([]float32, saved.n)
		if err := r.Float32(prefix+b.name, *b.buf, shape...); err != nil {
			return err
		}
	}
	switch {
	case saved.kind == kindAdamW && (saved.a == nil || saved.b == nil):
		return fmt.Errorf("%w: %q: an AdamW State needs exp_avg and exp_avg_sq", checkpoint.ErrMissing, prefix)
	case saved.kind == kindSGD && saved.a == nil && saved.stepped():
		return fmt.Errorf("%w: %q: an SGD State with momentum steps counted needs its momentum_buffer", checkpoint.ErrMissing, prefix)
	}
	*st = saved
	return nil
}

// stepped reports whether st counts any step (SGD counts steps with
// momentum only).
func (st *State) stepped() bool {
	if st.t != 0 {
		return true
	}
	for _, t := range st.rowT {
		if t != 0 {
			return true
		}
	}
	return false
}
