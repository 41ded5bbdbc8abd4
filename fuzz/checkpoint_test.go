package fuzz

import (
	"bytes"
	"errors"
	"testing"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

// stateFile is st saved under "o." as the bytes of a safetensors file.
func stateFile(tb testing.TB, st *optim.State) []byte {
	tb.Helper()
	var f checkpoint.File
	if err := f.Save("o.", st); err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := f.WriteTo(&b); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// FuzzStateLoad: optim.State.LoadState on any file. It fails with an error
// wrapping a sentinel and leaves the State as it was (fresh, or sized by
// an SGD or an AdamW step), or it succeeds, and then the State saves the
// same tensors again and steps a parameter of its recorded shape without
// a panic.
func FuzzStateLoad(f *testing.F) {
	p := []float32{1, -2, 3, 0.5, 0.25, -1}
	g := []float32{0.1, 0.2, -0.3, 0.4, 0, 1}
	pm, gm := loss.Matrix{Rows: 3, Cols: 2, Data: p}, loss.Matrix{Rows: 3, Cols: 2, Data: g}
	sgd := optim.SGD{LR: 0.1, Momentum: 0.9}
	adamw := optim.AdamW{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	var zero, sf, sr, af, ar optim.State
	for _, err := range []error{sgd.Step(p, g, &sf), sgd.StepRows(pm, gm, []int32{0, 2}, &sr),
		adamw.Step(p, g, &af), adamw.StepRows(pm, gm, []int32{1}, &ar)} {
		if err != nil {
			f.Fatal(err)
		}
	}
	for _, st := range []*optim.State{&zero, &sf, &sr, &af, &ar} {
		f.Add(stateFile(f, st))
	}
	sentinels := []error{loss.ErrShape, loss.ErrParam, checkpoint.ErrMissing, checkpoint.ErrFormat}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := checkpoint.Parse(b)
		if err != nil {
			return // FuzzParse's business
		}
		for _, size := range []func(*optim.State) error{
			func(*optim.State) error { return nil },
			func(st *optim.State) error { return sgd.Step([]float32{1, 2, 3, 4, 5, 6}, g, st) },
			func(st *optim.State) error {
				return adamw.StepRows(loss.Matrix{Rows: 3, Cols: 2, Data: []float32{1, 2, 3, 4, 5, 6}}, gm, []int32{2}, st)
			},
		} {
			var st optim.State
			if err := size(&st); err != nil {
				t.Fatal(err)
			}
			before := stateFile(t, &st)
			if err := file.Load("o.", &st); err != nil {
				wrapped := false
				for _, s := range sentinels {
					wrapped = wrapped || errors.Is(err, s)
				}
				if !wrapped {
					t.Fatalf("error wraps no sentinel: %v", err)
				}
				if !bytes.Equal(stateFile(t, &st), before) {
					t.Fatalf("a failed load (%v) changed the State", err)
				}
				continue
			}
			saved := stateFile(t, &st)
			var again optim.State
			if err := file.Load("o.", &again); err != nil || !bytes.Equal(stateFile(t, &again), saved) {
				t.Fatalf("a loaded State does not load again into a fresh one: %v", err)
			}
			var hdr [5]int64
			if err := file.Int64("o.state", hdr[:], 5); err != nil {
				t.Fatal(err)
			}
			n, cols := int(hdr[3]), int(hdr[4])
			if n > 1<<16 {
				continue
			}
			q, dq := make([]float32, n), make([]float32, n)
			for i := range dq {
				dq[i] = float32(i%7) - 3
			}
			if hdr[2] == 0 {
				_, _ = sgd.Step(q, dq, &st), adamw.Step(q, dq, &st)
				continue
			}
			if cols == 0 {
				continue
			}
			var info checkpoint.Info
			info, _ = file.Info("o.step")
			rows := info.Shape[0]
			all := make([]int32, rows)
			for i := range all {
				all[i] = int32(i)
			}
			qm, dm := loss.Matrix{Rows: rows, Cols: cols, Data: q}, loss.Matrix{Rows: rows, Cols: cols, Data: dq}
			_, _ = sgd.StepRows(qm, dm, all, &st), adamw.StepRows(qm, dm, all, &st)
		}
	})
}
