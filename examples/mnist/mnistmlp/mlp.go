// Package mnistmlp is the MNIST data and the MLP backbone shared by the
// examples/mnist trainer and the examples/distributed sharded trainer: the
// MNIST loader (the GoMNIST module's files in the Go module cache), a
// small multilayer perceptron with hand-written Forward and Backward over
// the asm GEMMs, its parameters, gradient-norm helpers and a
// deterministic parallel loop. It is an example's support code, not a
// general-purpose library: its API is what the two programs need.
package mnistmlp

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/marginloss/marginloss/asm"
)

// ParallelFor runs fn over [0,n) split into fixed chunks of the given size,
// on up to GOMAXPROCS goroutines. The partition depends only on n and
// chunk, so the results do not depend on scheduling or on the core count.
func ParallelFor(n, chunk int, fn func(lo, hi int)) {
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

// Param is a trainable tensor with its gradient; its optimizer state (an
// optim.State) lives with the training loop.
type Param struct {
	W, Grad []float32
	Decay   bool // apply weight decay
}

// NewParam returns a zero tensor of n values (with zero gradient); decay
// says whether the training loop applies weight decay to it.
func NewParam(n int, decay bool) *Param {
	return &Param{W: make([]float32, n), Grad: make([]float32, n), Decay: decay}
}

// ClipGrad scales all gradients down so that their global L2 norm is at
// most maxNorm (no-op when maxNorm <= 0), and returns the norm before.
func ClipGrad(ps []*Param, maxNorm float64) float64 {
	norm := math.Sqrt(SumSquares(ps))
	if maxNorm > 0 && norm > maxNorm {
		ScaleGrads(ps, float32(maxNorm/norm))
	}
	return norm
}

// SumSquares returns Σ g² over the gradients of ps, in float64: the square
// of their global L2 norm, or one rank's part of it.
func SumSquares(ps []*Param) float64 {
	var s float64
	for _, p := range ps {
		for _, g := range p.Grad {
			s += float64(g) * float64(g)
		}
	}
	return s
}

// ScaleGrads multiplies every gradient of ps by f.
func ScaleGrads(ps []*Param, f float32) {
	for _, p := range ps {
		for i := range p.Grad {
			p.Grad[i] *= f
		}
	}
}

// Dense is a fully connected layer y = x·W + b with W stored In×Out
// (row-major), so the forward pass and dW are GemmNN and GemmTN.
type Dense struct {
	In, Out int
	W, B    *Param
}

// MLP is a stack of dense layers with ReLU between them and none after the
// last: the output of the last layer is the embedding.
type MLP struct {
	Layers []*Dense
	// DenseInput makes the first layer expand the batch to a dense n×784
	// matrix and use the GEMMs, instead of the sparse kernels below. The
	// sparse path does about a fifth of the arithmetic on MNIST and wins
	// with the generic (pure Go) GEMMs; with the SIMD GEMMs the dense path
	// is about twice as fast (measured with AVX-512 on 2 cores).
	DenseInput bool
	xb         []float32 // the dense batch (DenseInput)
	// Buffers of the last forward pass, kept for backward: acts[l+1] is the
	// output of layer l (after ReLU for hidden layers); the input is the
	// sparse batch (data, rows).
	acts  [][]float32
	delta [2][]float32
	n     int
	data  *Dataset
	rows  []int
	// Pixel-major copy of the batch for the first layer's dW.
	colPtr, fill []int
	colRow       []int32
	colVal       []float32
}

// NewMLP builds an MLP with the given layer widths, e.g. 784,256,128.
// Hidden layers use He initialisation (ReLU follows them), the embedding
// layer variance 1/In.
func NewMLP(sizes []int, rng *rand.Rand) *MLP {
	m := &MLP{}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		d := &Dense{In: in, Out: out, W: NewParam(in*out, true), B: NewParam(out, false)}
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
func (m *MLP) Params() []*Param {
	var ps []*Param
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

// Grow returns buf resliced to length n, or a new slice when its capacity
// is too small (the contents are not kept then).
func Grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// Forward runs the images rows of d through the network and returns the
// n×D embeddings (a buffer owned by m, valid until the next call). The
// batch is kept for Backward.
//
// The first layer reads the sparse images directly (out_r = b + Σ_k v_k·W_k
// over the nonzero pixels k of image r), which is about five times less work
// than a dense GEMM on MNIST; the other layers use the asm GEMMs.
func (m *MLP) Forward(d *Dataset, rows []int) []float32 {
	n := len(rows)
	m.n, m.data, m.rows = n, d, rows
	if len(m.acts) != len(m.Layers)+1 {
		m.acts = make([][]float32, len(m.Layers)+1)
	}
	if m.DenseInput {
		m.xb = Grow(m.xb, n*m.Layers[0].In)
	}
	for l, L := range m.Layers {
		out := Grow(m.acts[l+1], n*L.Out)
		m.acts[l+1] = out
		relu := l+1 < len(m.Layers)
		in := m.acts[l]
		ParallelFor(n, rowChunk, func(lo, hi int) {
			o := out[lo*L.Out : hi*L.Out]
			if l == 0 && m.DenseInput {
				x := m.xb[lo*L.In : hi*L.In]
				clear(x)
				for r := lo; r < hi; r++ {
					idx, val := d.Row(rows[r])
					xr := x[(r-lo)*L.In:]
					for k, p := range idx {
						xr[p] = val[k]
					}
				}
				asm.GemmNN(hi-lo, L.Out, L.In, 1, x, L.In, L.W.W, L.Out, 0, o, L.Out)
			} else if l == 0 {
				for r := lo; r < hi; r++ {
					idx, val := d.Row(rows[r])
					sparseRow(o[(r-lo)*L.Out:(r-lo+1)*L.Out], idx, val, L.W.W, L.Out)
				}
			} else {
				asm.GemmNN(hi-lo, L.Out, L.In, 1, in[lo*L.In:], L.In, L.W.W, L.Out, 0, o, L.Out)
			}
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

// sparseRow sets o = Σ_k val[k]·W[idx[k]] where W has rows of length len(o)
// (stride ld).
func sparseRow(o []float32, idx []uint16, val []float32, w []float32, ld int) {
	clear(o)
	k := 0
	for ; k+4 <= len(idx); k += 4 {
		axpy4(o, val[k], val[k+1], val[k+2], val[k+3],
			w[int(idx[k])*ld:], w[int(idx[k+1])*ld:], w[int(idx[k+2])*ld:], w[int(idx[k+3])*ld:])
	}
	for ; k < len(idx); k++ {
		axpy1(o, val[k], w[int(idx[k])*ld:])
	}
}

// axpy4 adds a0·x0 + a1·x1 + a2·x2 + a3·x3 to dst (the x are at least as
// long as dst).
func axpy4(dst []float32, a0, a1, a2, a3 float32, x0, x1, x2, x3 []float32) {
	n := len(dst)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for j := range dst {
		dst[j] += a0*x0[j] + a1*x1[j] + a2*x2[j] + a3*x3[j]
	}
}

// axpy1 adds a·x to dst.
func axpy1(dst []float32, a float32, x []float32) {
	x = x[:len(dst)]
	for j := range dst {
		dst[j] += a * x[j]
	}
}

// Backward takes dL/d(embedding) for the batch of the last Forward and
// writes the gradients of all layers into their Grad buffers (overwriting;
// an empty batch gives zero gradients).
func (m *MLP) Backward(dEmb []float32) {
	n := m.n
	if n == 0 {
		// An empty batch (a rank with no rows of a global batch, as in
		// examples/distributed) has zero gradients.
		for _, p := range m.Params() {
			clear(p.Grad)
		}
		return
	}
	delta := dEmb[:n*m.EmbedDim()]
	for l := len(m.Layers) - 1; l >= 0; l-- {
		L := m.Layers[l]
		if l == 0 && !m.DenseInput {
			m.sparseGrad(L, delta)
		} else {
			// dW = inᵀ·delta (In×Out), split over rows of dW.
			in := m.acts[l]
			if l == 0 {
				in = m.xb
			}
			ParallelFor(L.In, colChunk, func(lo, hi int) {
				asm.GemmTN(hi-lo, L.Out, n, 1, in[lo:], L.In, delta, L.Out, 0, L.W.Grad[lo*L.Out:], L.Out)
			})
		}
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
		in := m.acts[l]
		buf := &m.delta[l%2]
		*buf = Grow(*buf, n*L.In)
		din := *buf
		ParallelFor(n, rowChunk, func(lo, hi int) {
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

// sparseGrad writes dW = Xᵀ·delta for the sparse input layer: row p of dW
// sums v·delta_r over the images r of the batch whose pixel p is v ≠ 0, in
// batch order. The batch is transposed to pixel-major lists first.
func (m *MLP) sparseGrad(L *Dense, delta []float32) {
	P, O := L.In, L.Out
	m.colPtr = Grow(m.colPtr, P+1)
	clear(m.colPtr)
	nnz := 0
	for _, r := range m.rows {
		idx, _ := m.data.Row(r)
		for _, p := range idx {
			m.colPtr[int(p)+1]++
		}
		nnz += len(idx)
	}
	for p := 0; p < P; p++ {
		m.colPtr[p+1] += m.colPtr[p]
	}
	m.colRow = Grow(m.colRow, nnz)
	m.colVal = Grow(m.colVal, nnz)
	m.fill = Grow(m.fill, P)
	copy(m.fill, m.colPtr[:P])
	for b, r := range m.rows {
		idx, val := m.data.Row(r)
		for k, p := range idx {
			at := m.fill[p]
			m.colRow[at], m.colVal[at] = int32(b), val[k]
			m.fill[p]++
		}
	}
	ParallelFor(P, colChunk, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			g := L.W.Grad[p*O : (p+1)*O]
			clear(g)
			rs, vs := m.colRow[m.colPtr[p]:m.colPtr[p+1]], m.colVal[m.colPtr[p]:m.colPtr[p+1]]
			k := 0
			for ; k+4 <= len(rs); k += 4 {
				axpy4(g, vs[k], vs[k+1], vs[k+2], vs[k+3],
					delta[int(rs[k])*O:], delta[int(rs[k+1])*O:], delta[int(rs[k+2])*O:], delta[int(rs[k+3])*O:])
			}
			for ; k < len(rs); k++ {
				axpy1(g, vs[k], delta[int(rs[k])*O:])
			}
		}
	})
}

// Embed runs the network over all samples of d in batches and returns the
// d.N×D embeddings in a new slice.
func (m *MLP) Embed(d *Dataset, batch int) []float32 {
	D := m.EmbedDim()
	out := make([]float32, d.N*D)
	rows := make([]int, 0, batch)
	for lo := 0; lo < d.N; lo += batch {
		hi := min(lo+batch, d.N)
		rows = rows[:0]
		for i := lo; i < hi; i++ {
			rows = append(rows, i)
		}
		copy(out[lo*D:hi*D], m.Forward(d, rows))
	}
	return out
}
