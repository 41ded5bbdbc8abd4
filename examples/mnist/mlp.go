package main

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/marginloss/marginloss/asm"
)

// parallelFor runs fn over [0,n) split into fixed chunks of the given size,
// on up to GOMAXPROCS goroutines. The partition depends only on n and
// chunk, so the results do not depend on scheduling or on the core count.
func parallelFor(n, chunk int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	chunk = max(chunk, 1)
	nChunks := (n + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), nChunks)
	if workers <= 1 {
		for lo := 0; lo < n; lo += chunk {
			fn(lo, min(lo+chunk, n))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				c := int(next.Add(1)) - 1
				if c >= nChunks {
					return
				}
				lo := c * chunk
				fn(lo, min(lo+chunk, n))
			}
		})
	}
	wg.Wait()
}

// param is a trainable tensor with its gradient and momentum buffer.
type param struct {
	W, Grad, Vel []float32
	Decay        bool // apply weight decay
}

func newParam(n int, decay bool) *param {
	return &param{W: make([]float32, n), Grad: make([]float32, n), Vel: make([]float32, n), Decay: decay}
}

// sgdStep applies SGD with momentum and coupled weight decay (the PyTorch
// form): v ← μ·v + g + λ·w, w ← w − lr·v.
func sgdStep(ps []*param, lr, momentum, decay float32) {
	for _, p := range ps {
		wd := decay
		if !p.Decay {
			wd = 0
		}
		for i, g := range p.Grad {
			v := momentum*p.Vel[i] + g + wd*p.W[i]
			p.Vel[i] = v
			p.W[i] -= lr * v
		}
	}
}

// dense is a fully connected layer y = x·W + b with W stored In×Out
// (row-major), so the forward pass and dW are GemmNN and GemmTN.
type dense struct {
	In, Out int
	W, B    *param
}

// MLP is a stack of dense layers with ReLU between them and none after the
// last: the output of the last layer is the embedding.
type MLP struct {
	Layers []*dense
	// Buffers of the last forward pass, kept for backward: acts[0] is the
	// input, acts[l+1] the output of layer l (after ReLU for hidden layers).
	acts  [][]float32
	delta [2][]float32
	n     int
}

// newMLP builds an MLP with the given layer widths, e.g. 784,256,128.
// Hidden layers use He initialisation (ReLU follows them), the embedding
// layer variance 1/In.
func newMLP(sizes []int, rng *rand.Rand) *MLP {
	m := &MLP{}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		d := &dense{In: in, Out: out, W: newParam(in*out, true), B: newParam(out, false)}
		gain := 2.0
		if l+2 == len(sizes) {
			gain = 1
		}
		std := math.Sqrt(gain / float64(in))
		for i := range d.W.W {
			d.W.W[i] = float32(rng.NormFloat64() * std)
		}
		m.Layers = append(m.Layers, d)
	}
	return m
}

// Params lists the trainable tensors.
func (m *MLP) Params() []*param {
	var ps []*param
	for _, d := range m.Layers {
		ps = append(ps, d.W, d.B)
	}
	return ps
}

// EmbedDim is the width of the last layer.
func (m *MLP) EmbedDim() int { return m.Layers[len(m.Layers)-1].Out }

// rowChunk is the batch-row chunk of the parallel forward and dX passes,
// colChunk the dW row chunk.
const (
	rowChunk = 16
	colChunk = 32
)

func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// Forward runs the n×In0 batch x through the network and returns the n×D
// embeddings (a buffer owned by m, valid until the next call). x is kept
// for Backward, so the caller must not modify it in between.
func (m *MLP) Forward(x []float32, n int) []float32 {
	m.n = n
	if len(m.acts) != len(m.Layers)+1 {
		m.acts = make([][]float32, len(m.Layers)+1)
	}
	m.acts[0] = x[:n*m.Layers[0].In]
	for l, d := range m.Layers {
		in := m.acts[l]
		out := grow(m.acts[l+1], n*d.Out)
		m.acts[l+1] = out
		relu := l+1 < len(m.Layers)
		parallelFor(n, rowChunk, func(lo, hi int) {
			o := out[lo*d.Out : hi*d.Out]
			asm.GemmNN(hi-lo, d.Out, d.In, 1, in[lo*d.In:], d.In, d.W.W, d.Out, 0, o, d.Out)
			for r := 0; r < hi-lo; r++ {
				row := o[r*d.Out : (r+1)*d.Out]
				for j, b := range d.B.W {
					v := row[j] + b
					if relu && v < 0 {
						v = 0
					}
					row[j] = v
				}
			}
		})
	}
	return m.acts[len(m.Layers)]
}

// Backward takes dL/d(embedding) for the batch of the last Forward and
// writes the gradients of all layers into their Grad buffers (overwriting).
func (m *MLP) Backward(dEmb []float32) {
	n := m.n
	delta := dEmb[:n*m.EmbedDim()]
	for l := len(m.Layers) - 1; l >= 0; l-- {
		d := m.Layers[l]
		in := m.acts[l]
		// dW = inᵀ·delta (In×Out), split over rows of dW.
		parallelFor(d.In, colChunk, func(lo, hi int) {
			asm.GemmTN(hi-lo, d.Out, n, 1, in[lo:], d.In, delta, d.Out, 0, d.W.Grad[lo*d.Out:], d.Out)
		})
		// db = column sums of delta.
		gb := d.B.Grad
		clear(gb)
		for r := 0; r < n; r++ {
			for j, v := range delta[r*d.Out : (r+1)*d.Out] {
				gb[j] += v
			}
		}
		if l == 0 {
			break
		}
		// dIn = delta·Wᵀ masked by the ReLU of the layer below (its output
		// is in; in > 0 exactly where the ReLU passed the value).
		buf := &m.delta[l%2]
		*buf = grow(*buf, n*d.In)
		din := *buf
		parallelFor(n, rowChunk, func(lo, hi int) {
			o := din[lo*d.In : hi*d.In]
			asm.GemmNT(hi-lo, d.In, d.Out, 1, delta[lo*d.Out:], d.Out, d.W.W, d.Out, 0, o, d.In)
			a := in[lo*d.In : hi*d.In]
			for i, v := range a {
				if v <= 0 {
					o[i] = 0
				}
			}
		})
		delta = din
	}
}

// Embed runs the network over all samples of d in batches and returns the
// d.N×D embeddings in a new slice.
func (m *MLP) Embed(d *Dataset, batch int) []float32 {
	D := m.EmbedDim()
	out := make([]float32, d.N*D)
	for lo := 0; lo < d.N; lo += batch {
		hi := min(lo+batch, d.N)
		e := m.Forward(d.Images[lo*imageSize:hi*imageSize], hi-lo)
		copy(out[lo*D:hi*D], e)
	}
	return out
}
