// The MLP backbone and its optimiser, trimmed from examples/mnist/mlp.go
// (package main there, so it cannot be imported): the first layer always
// expands the sparse images to a dense batch and uses the asm GEMMs.

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
		parallelFor(len(p.W), 1<<14, func(lo, hi int) {
			w, g, vel := p.W[lo:hi], p.Grad[lo:hi], p.Vel[lo:hi]
			for i := range w {
				v := momentum*vel[i] + g[i] + wd*w[i]
				vel[i] = v
				w[i] -= lr * v
			}
		})
	}
}

// sumSquares returns Σ g² over the gradients of ps, in float64.
func sumSquares(ps []*param) float64 {
	var s float64
	for _, p := range ps {
		for _, g := range p.Grad {
			s += float64(g) * float64(g)
		}
	}
	return s
}

// scaleGrads multiplies every gradient of ps by f.
func scaleGrads(ps []*param, f float32) {
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] *= f
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
	// acts[0] is the dense input batch, acts[l+1] the output of layer l
	// (after ReLU for hidden layers), kept for Backward.
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

func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// Forward runs the images rows of d through the network and returns the
// n×D embeddings (a buffer owned by m, valid until the next call). The
// activations are kept for Backward.
func (m *MLP) Forward(d *Dataset, rows []int) []float32 {
	n := len(rows)
	m.n = n
	if len(m.acts) != len(m.Layers)+1 {
		m.acts = make([][]float32, len(m.Layers)+1)
	}
	in0 := m.Layers[0].In
	x := grow(m.acts[0], n*in0)
	m.acts[0] = x
	clear(x)
	for r, row := range rows {
		idx, val := d.Row(row)
		xr := x[r*in0 : (r+1)*in0]
		for k, p := range idx {
			xr[p] = val[k]
		}
	}
	for l, L := range m.Layers {
		out := grow(m.acts[l+1], n*L.Out)
		m.acts[l+1] = out
		relu := l+1 < len(m.Layers)
		in := m.acts[l]
		parallelFor(n, rowChunk, func(lo, hi int) {
			o := out[lo*L.Out : hi*L.Out]
			asm.GemmNN(hi-lo, L.Out, L.In, 1, in[lo*L.In:], L.In, L.W.W, L.Out, 0, o, L.Out)
			for r := 0; r < hi-lo; r++ {
				row := o[r*L.Out : (r+1)*L.Out]
				for j, b := range L.B.W {
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
	if n == 0 {
		// A rank with no rows in this batch (more ranks than rows) adds
		// nothing to the all-reduced gradient.
		for _, p := range m.Params() {
			clear(p.Grad)
		}
		return
	}
	delta := dEmb[:n*m.EmbedDim()]
	for l := len(m.Layers) - 1; l >= 0; l-- {
		L := m.Layers[l]
		// dW = inᵀ·delta (In×Out), split over rows of dW.
		in := m.acts[l]
		parallelFor(L.In, colChunk, func(lo, hi int) {
			asm.GemmTN(hi-lo, L.Out, n, 1, in[lo:], L.In, delta, L.Out, 0, L.W.Grad[lo*L.Out:], L.Out)
		})
		// db = column sums of delta.
		gb := L.B.Grad
		clear(gb)
		for r := 0; r < n; r++ {
			for j, v := range delta[r*L.Out : (r+1)*L.Out] {
				gb[j] += v
			}
		}
		if l == 0 {
			break
		}
		// dIn = delta·Wᵀ masked by the ReLU of the layer below (its output
		// is in; in > 0 exactly where the ReLU passed the value).
		buf := &m.delta[l%2]
		*buf = grow(*buf, n*L.In)
		din := *buf
		parallelFor(n, rowChunk, func(lo, hi int) {
			o := din[lo*L.In : hi*L.In]
			asm.GemmNT(hi-lo, L.In, L.Out, 1, delta[lo*L.Out:], L.Out, L.W.W, L.Out, 0, o, L.In)
			for i, v := range in[lo*L.In : hi*L.In] {
				if v <= 0 {
					o[i] = 0
				}
			}
		})
		delta = din
	}
}
