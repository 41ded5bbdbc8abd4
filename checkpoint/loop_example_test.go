package checkpoint_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/marginloss/marginloss/checkpoint"
	"github.com/marginloss/marginloss/eval"
	"github.com/marginloss/marginloss/loss"
	"github.com/marginloss/marginloss/optim"
)

const loopN, loopD, loopC = 400, 8, 20

// linear is a stand-in backbone: x = u·Bᵀ, with B a D×D matrix (starting
// as the identity) and its gradient dB.
type linear struct{ B, dB []float32 }

func (l *linear) Forward(u, x loss.Matrix) {
	for i := range u.Rows {
		for k := range loopD {
			var s float32
			for j := range loopD {
				s += l.B[k*loopD+j] * u.Data[i*loopD+j]
			}
			x.Data[i*loopD+k] = s
		}
	}
}

func (l *linear) Backward(u, dx loss.Matrix) {
	clear(l.dB)
	for i := range u.Rows {
		for k := range loopD {
			for j := range loopD {
				l.dB[k*loopD+j] += dx.Data[i*loopD+k] * u.Data[i*loopD+j]
			}
		}
	}
}

// loopData is the inputs (a class prototype plus noise, the same on every
// call) and their labels.
func loopData() (loss.Matrix, []int32) {
	r := rand.New(rand.NewPCG(1, 2))
	proto := make([]float32, loopC*loopD)
	for i := range proto {
		proto[i] = float32(r.NormFloat64())
	}
	u := loss.Matrix{Rows: loopN, Cols: loopD, Data: make([]float32, loopN*loopD)}
	labels := make([]int32, loopN)
	for i := range labels {
		labels[i] = int32(i % loopC)
		for k := range loopD {
			u.Data[i*loopD+k] = proto[int(labels[i])*loopD+k] + float32(r.NormFloat64()*0.15)
		}
	}
	return u, labels
}

// loopPairs makes verification pairs of the embeddings: rows i and i+C are
// the same class, rows i and i+1 are not.
func loopPairs(x loss.Matrix) (a, b loss.Matrix, same []bool) {
	n, c, d := x.Rows, loopC, loopD
	a = loss.Matrix{Rows: n - c, Cols: d, Data: x.Data[:(n-c)*d]}
	b = loss.Matrix{Rows: n - c, Cols: d, Data: make([]float32, (n-c)*d)}
	same = make([]bool, n-c)
	for i := range same {
		same[i] = i%2 == 0
		j := i + 1 + (c-1)*(1-i%2) // i+c or i+1
		copy(b.Data[i*d:(i+1)*d], x.Data[j*d:(j+1)*d])
	}
	return a, b, same
}

// trainLoop is the README's training loop ("Training, evaluation and
// checkpoints"): it resumes from path when the file exists, trains up to
// step steps, reports, and saves its state to path.
func trainLoop(path string, steps int) (loss.Matrix, error) {
	u, labels := loopData()
	x := loss.Matrix{Rows: loopN, Cols: loopD, Data: make([]float32, loopN*loopD)}
	dx := loss.Matrix{Rows: loopN, Cols: loopD, Data: make([]float32, loopN*loopD)}
	w := loss.Matrix{Rows: loopC, Cols: loopD, Data: make([]float32, loopC*loopD)}
	if err := optim.Normal(w.Data, 0, 0.01, 1); err != nil { // arcface_torch's init of W
		return w, err
	}
	backbone := &linear{B: make([]float32, loopD*loopD), dB: make([]float32, loopD*loopD)}
	for k := range loopD {
		backbone.B[k*loopD+k] = 1
	}
	// The README's loop, from here to the end.
	pfc := &loss.PartialFC{Head: loss.ArcFace(16, 0.2), SampleRate: 0.5, Seed: 7}
	var stW, stB optim.State                             // W's and the backbone's optimizer state
	if f, err := checkpoint.ReadFile(path); err == nil { // resume: the same configuration, the saved state
		err = errors.Join(f.Matrix("w", w), f.Float32("backbone", backbone.B), f.Load("optim.w.", &stW),
			f.Load("optim.backbone.", &stB), f.Load("partialfc.", checkpoint.PartialFC(pfc)))
		if err != nil {
			return w, err
		}
	}
	sched := optim.PolyLR{Base: 0.5, Warmup: 10, Total: 100} // its length is the config's, not where a run stops
	for step := int(pfc.Calls()); step < steps; step++ {     // one draw per step: the counter is the step
		opt := optim.SGD{LR: sched.At(step), Momentum: 0.9, WeightDecay: 5e-4}
		pfc.Head.FusedStep = opt.Fused(&stW) // W is stepped inside the backward pass: no C×D dW
		backbone.Forward(u, x)
		if _, err := pfc.Loss(x, w, labels, &dx, nil); err != nil {
			return w, err
		}
		backbone.Backward(u, dx)
		if err := opt.Step(backbone.B, backbone.dB, &stB); err != nil {
			return w, err
		}
	}
	top1, err := eval.Top1(x, w, labels) // nearest class weight by cosine
	a, b, same := loopPairs(x)
	v, err2 := eval.Verification(a, b, same, eval.VerifyOptions{}) // insightface's protocol: 10 folds
	if err := errors.Join(err, err2); err != nil {
		return w, err
	}
	fmt.Printf("step %d: top-1 %.2f, verification %.2f, VAL@FAR=1e-3 %.2f\n", pfc.Calls(), top1, v.Accuracy, v.VAL)
	var out checkpoint.File // safetensors: Python reads w directly
	err = errors.Join(out.PutMatrix("w", w), out.PutFloat32("backbone", backbone.B, loopD, loopD),
		out.Save("optim.w.", &stW), out.Save("optim.backbone.", &stB), out.Save("partialfc.", checkpoint.PartialFC(pfc)))
	if err != nil {
		return w, err
	}
	return w, out.WriteFile(path) // atomic: a temporary file, then a rename
}

// A training loop around the head: a backbone (here a linear layer on
// synthetic inputs) and Partial FC over ArcFace, both stepped by momentum
// SGD (W inside the head's backward pass), the learning rate from
// arcface_torch's schedule, verification by insightface's protocol, and a
// checkpoint. A run of 60 steps saves; a later run resumes it to 100 and
// ends with the W of 100 uninterrupted steps, bit for bit.
func Example_trainingLoop() {
	dir, err := os.MkdirTemp("", "marginloss-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	half := filepath.Join(dir, "half.safetensors")
	if _, err := trainLoop(half, 60); err != nil {
		panic(err)
	}
	resumed, err := trainLoop(half, 100)
	if err != nil {
		panic(err)
	}
	whole, err := trainLoop(filepath.Join(dir, "whole.safetensors"), 100)
	if err != nil {
		panic(err)
	}
	fmt.Println("resumed = uninterrupted:", slices.Equal(resumed.Data, whole.Data))
	// Output:
	// step 60: top-1 1.00, verification 1.00, VAL@FAR=1e-3 1.00
	// step 100: top-1 1.00, verification 1.00, VAL@FAR=1e-3 1.00
	// step 100: top-1 1.00, verification 1.00, VAL@FAR=1e-3 1.00
	// resumed = uninterrupted: true
}
