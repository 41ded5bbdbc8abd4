package checkpoint_test

import (
	"bytes"
	"fmt"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/loss"
)

// momentum stands for a type of one's own with unexported state: it
// implements checkpoint.State, as *optim.State does.
type momentum struct {
	v    []float32 // one velocity per parameter
	step uint64
}

func (m *momentum) SaveState(w checkpoint.Writer, prefix string) error {
	if err := w.PutFloat32(prefix+"v", m.v, len(m.v)); err != nil {
		return err
	}
	return w.PutUint64(prefix+"step", []uint64{m.step})
}

// LoadState validates every tensor before it changes anything.
func (m *momentum) LoadState(r checkpoint.Reader, prefix string) error {
	v := make([]float32, len(m.v))
	if err := r.Float32(prefix+"v", v, len(m.v)); err != nil {
		return err
	}
	var step [1]uint64
	if err := r.Uint64(prefix+"step", step[:]); err != nil {
		return err
	}
	copy(m.v, v)
	m.step = step[0]
	return nil
}

// A checkpoint of W, its optimiser state and PartialFC's draw counter,
// written and read back.
func Example() {
	w := loss.Matrix{Rows: 2, Cols: 2, Data: []float32{0.5, -1, 2, 0.25}}
	opt := &momentum{v: []float32{0.1, 0.2, 0.3, 0.4}, step: 7}
	pfc := &loss.PartialFC{Head: loss.ArcFace(64, 0.5), SampleRate: 0.1, Seed: 1}
	pfc.SetCalls(7)

	var f checkpoint.File
	f.Metadata = map[string]string{"epoch": "3"}
	if err := f.PutMatrix("w", w); err != nil {
		fmt.Println(err)
	}
	f.Save("optim.w.", opt)
	f.Save("partialfc.", checkpoint.PartialFC(pfc))
	var file bytes.Buffer // or f.WriteFile(path), atomically
	f.WriteTo(&file)

	g, err := checkpoint.Read(&file)
	if err != nil {
		fmt.Println(err)
		return
	}
	w2 := loss.Matrix{Rows: 2, Cols: 2, Data: make([]float32, 4)}
	opt2 := &momentum{v: make([]float32, 4)}
	pfc2 := &loss.PartialFC{Head: loss.ArcFace(64, 0.5), SampleRate: 0.1, Seed: 1}
	fmt.Println(g.Matrix("w", w2), g.Load("optim.w.", opt2), g.Load("partialfc.", checkpoint.PartialFC(pfc2)))
	fmt.Println(g.Names(), g.Metadata["epoch"])
	fmt.Println(w2.Data, opt2.v, opt2.step, pfc2.Calls())
	// Output:
	// <nil> <nil> <nil>
	// [optim.w.step optim.w.v partialfc.calls w] 3
	// [0.5 -1 2 0.25] [0.1 0.2 0.3 0.4] 7 7
}
