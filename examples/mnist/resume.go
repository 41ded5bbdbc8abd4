package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
	"github.com/marginloss/marginloss/loss"
)

// trainState is everything a run needs to continue bitwise: every
// parameter with its momentum, the centre-loss centres, the random source
// and the sample order (each epoch shuffles the previous epoch's order),
// the iteration (learning rate, λ annealing, the softmax pre-training) and
// the epoch.
type trainState struct {
	params []*mnistmlp.Param // the backbone's, then the head's W (C×D, the last)
	c, d   int
	center *loss.Center // nil without -center
	src    *rand.PCG
	order  []int
	iter   int
	epoch  int // epochs done
}

// resumeKey is the configuration a checkpoint is only valid for: every
// flag that changes the training, except -epochs (a resumed run goes on up
// to the new -epochs) and the ones that only change what is printed.
func resumeKey(cfg config, name string) string {
	c := cfg
	c.Epochs, c.Losses, c.DataDir, c.Plot, c.EvalEach, c.CPUProfile, c.TestSize, c.Save, c.Resume = 0, nil, "", "", false, "", 0, "", ""
	c.LREpochs = cfg.lrEpochs()
	return fmt.Sprintf("loss=%s %+v", name, c)
}

// saveCheckpoint writes st to path in the safetensors format: the class
// weights as "w" (C×D, which Python reads with numpy or safetensors) and
// "w.vel", the backbone's as "backbone.N.w" and "backbone.N.vel", then
// "center", "order", "rng.pcg" and "progress" (iteration, epochs done).
func saveCheckpoint(path string, cfg config, name string, st trainState) error {
	f := checkpoint.File{Metadata: map[string]string{
		"format": "marginloss examples/mnist checkpoint 1",
		"config": resumeKey(cfg, name),
	}}
	for i, p := range st.params {
		name, shape := st.paramName(i), []int{len(p.W)}
		if i == len(st.params)-1 {
			shape = []int{st.c, st.d}
		}
		if err := f.PutFloat32(name, p.W, shape...); err != nil {
			return err
		}
		if err := f.PutFloat32(st.velName(i), p.Vel, shape...); err != nil {
			return err
		}
	}
	if st.center != nil {
		if err := f.PutMatrix("center", st.center.Centers); err != nil {
			return err
		}
	}
	b, err := st.src.MarshalBinary() // "pcg:" and the two 64-bit words, big-endian
	if err != nil {
		return err
	}
	pcg := []uint64{binary.BigEndian.Uint64(b[4:]), binary.BigEndian.Uint64(b[12:])}
	if err := f.PutUint64("rng.pcg", pcg, 2); err != nil {
		return err
	}
	order := make([]int32, len(st.order))
	for i, v := range st.order {
		order[i] = int32(v)
	}
	if err := f.PutInt32("order", order, len(order)); err != nil {
		return err
	}
	if err := f.PutUint64("progress", []uint64{uint64(st.iter), uint64(st.epoch)}, 2); err != nil {
		return err
	}
	return f.WriteFile(path)
}

// loadCheckpoint restores st from path, after checking that it was written
// by a run of the same configuration; st is untouched on error.
func loadCheckpoint(path string, cfg config, name string, st *trainState) error {
	f, err := checkpoint.ReadFile(path)
	if err != nil {
		return err
	}
	if got, want := f.Metadata["config"], resumeKey(cfg, name); got != want {
		return fmt.Errorf("%s was saved by another configuration:\n  saved: %s\n  now:   %s", path, got, want)
	}
	w := make([][]float32, len(st.params))
	vel := make([][]float32, len(st.params))
	for i, p := range st.params {
		w[i], vel[i] = make([]float32, len(p.W)), make([]float32, len(p.Vel))
		name := st.paramName(i)
		if err := f.Float32(name, w[i]); err != nil {
			return err
		}
		if err := f.Float32(st.velName(i), vel[i]); err != nil {
			return err
		}
	}
	var centers []float32
	if st.center != nil {
		centers = make([]float32, len(st.center.Centers.Data))
		m := st.center.Centers
		m.Data = centers
		if err := f.Matrix("center", m); err != nil {
			return err
		}
	}
	order := make([]int32, len(st.order))
	if err := f.Int32("order", order, len(order)); err != nil {
		return err
	}
	for _, v := range order {
		if v < 0 || int(v) >= len(order) {
			return fmt.Errorf("%s: sample order holds %d of %d", path, v, len(order))
		}
	}
	var pcg, prog [2]uint64
	if err := f.Uint64("rng.pcg", pcg[:], 2); err != nil {
		return err
	}
	if err := f.Uint64("progress", prog[:], 2); err != nil {
		return err
	}
	b := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte("pcg:"), pcg[0]), pcg[1])
	if err := st.src.UnmarshalBinary(b); err != nil {
		return err
	}
	for i, p := range st.params {
		copy(p.W, w[i])
		copy(p.Vel, vel[i])
	}
	if st.center != nil {
		copy(st.center.Centers.Data, centers)
	}
	for i, v := range order {
		st.order[i] = int(v)
	}
	st.iter, st.epoch = int(prog[0]), int(prog[1])
	return nil
}

// velName is the tensor name of parameter i's momentum: "w.vel",
// "backbone.i.vel".
func (st trainState) velName(i int) string {
	if i == len(st.params)-1 {
		return "w.vel"
	}
	return fmt.Sprintf("backbone.%d.vel", i)
}

// paramName is the tensor name of parameter i: "w" for the head's class
// weights (the last), "backbone.i.w" for the others.
func (st trainState) paramName(i int) string {
	if i == len(st.params)-1 {
		return "w"
	}
	return fmt.Sprintf("backbone.%d.w", i)
}
