package main

import (
	"fmt"
	"sync"

	"github.com/marginloss/marginloss/examples/mnist/mnistmlp"
)

// Comm is the transport the trainer needs: the four collectives of
// arcface_torch's partial-FC head over float32 buffers. Every rank must call
// the same collectives in the same order with the same lengths. mpiComm
// (mpi.go) implements it with MPI; localGroup runs ranks as goroutines of
// one process (tests, and the build without MPI); a gRPC or NCCL transport
// would implement the same four methods.
type Comm interface {
	Rank() int
	Size() int
	// AllreduceSum replaces buf on every rank by the element-wise sum of
	// all ranks' buf.
	AllreduceSum(buf []float32) error
	// AllreduceMax is AllreduceSum with max.
	AllreduceMax(buf []float32) error
	// Allgather writes rank r's send into recv[r·len(send):(r+1)·len(send)]
	// on every rank; len(recv) = Size()·len(send).
	Allgather(send, recv []float32) error
}

// split returns the part [lo, hi) of [0, n) that part i of parts owns:
// n/parts items each, and the first n%parts parts one more. It is how the
// ranks share the rows of each global batch and the classes of W (10
// classes on 2 ranks: 0–4 and 5–9; on 3 ranks: 0–3, 4–6, 7–9).
func split(n, parts, i int) (lo, hi int) {
	q, r := n/parts, n%parts
	lo = i*q + min(i, r)
	hi = lo + q
	if i < r {
		hi++
	}
	return lo, hi
}

// allgatherRows gathers row blocks of different sizes with the
// equal-count Allgather: rank r contributes the rows [lo_r, hi_r) of
// split(n, Size, r) of an n×cols matrix, as local (its (hi_r−lo_r)·cols
// values), and every rank gets the whole matrix in out (n·cols values).
// Blocks are padded to the largest, ⌈n/Size⌉ rows, in scratch, which it
// grows and returns.
func allgatherRows(c Comm, local []float32, n, cols int, out, scratch []float32) ([]float32, error) {
	size, rank := c.Size(), c.Rank()
	lo, hi := split(n, size, rank)
	if len(local) != (hi-lo)*cols || len(out) != n*cols {
		return scratch, fmt.Errorf("allgatherRows: rank %d has %d values for rows [%d,%d) of %d×%d, out %d", rank, len(local), lo, hi, n, cols, len(out))
	}
	block := (n + size - 1) / size * cols
	scratch = mnistmlp.Grow(scratch, block*(size+1))
	send, recv := scratch[:block], scratch[block:]
	copy(send, local)
	clear(send[len(local):])
	if err := c.Allgather(send, recv); err != nil {
		return scratch, err
	}
	for r := range size {
		lo, hi := split(n, size, r)
		copy(out[lo*cols:hi*cols], recv[r*block:r*block+(hi-lo)*cols])
	}
	return scratch, nil
}

// localGroup is an in-process Comm: ranks are goroutines that meet at a
// barrier. Reductions run in rank order, so every rank gets bitwise the
// same result.
type localGroup struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	arrived int
	gen     int
	bufs    [][]float32
	err     error
}

// newLocalGroup returns the Comms of n ranks that share one process.
func newLocalGroup(n int) []Comm {
	g := &localGroup{n: n, bufs: make([][]float32, n)}
	g.cond = sync.NewCond(&g.mu)
	cs := make([]Comm, n)
	for r := range n {
		cs[r] = localComm{g, r}
	}
	return cs
}

// barrier waits until all ranks have arrived.
func (g *localGroup) barrier() {
	g.mu.Lock()
	gen := g.gen
	g.arrived++
	if g.arrived == g.n {
		g.arrived = 0
		g.gen++
		g.cond.Broadcast()
	} else {
		for gen == g.gen {
			g.cond.Wait()
		}
	}
	g.mu.Unlock()
}

type localComm struct {
	g    *localGroup
	rank int
}

func (c localComm) Rank() int { return c.rank }
func (c localComm) Size() int { return c.g.n }

func (c localComm) AllreduceSum(buf []float32) error {
	return c.allreduce(buf, func(a, b float32) float32 { return a + b })
}

func (c localComm) AllreduceMax(buf []float32) error {
	return c.allreduce(buf, func(a, b float32) float32 { return max(a, b) })
}

// check returns an error on every rank when the ranks' buffers differ in
// length (MPI would fail or hang).
func (c localComm) check(n int) error {
	for r, b := range c.g.bufs {
		if len(b) != n {
			return fmt.Errorf("localComm: rank %d passed %d values, rank %d %d", c.rank, n, r, len(b))
		}
	}
	return nil
}

func (c localComm) allreduce(buf []float32, op func(a, b float32) float32) error {
	g := c.g
	g.bufs[c.rank] = buf
	g.barrier()
	err := c.check(len(buf))
	var res []float32
	if err == nil {
		res = append([]float32(nil), g.bufs[0]...)
		for _, b := range g.bufs[1:] {
			for i, v := range b {
				res[i] = op(res[i], v)
			}
		}
	}
	g.barrier() // everyone has read every buf
	copy(buf, res)
	return err
}

func (c localComm) Allgather(send, recv []float32) error {
	g := c.g
	if len(recv) != g.n*len(send) {
		// Still take part in both barriers so that the others do not hang.
		g.bufs[c.rank] = nil
		g.barrier()
		g.barrier()
		return fmt.Errorf("localComm: Allgather of %d values into %d on %d ranks", len(send), len(recv), g.n)
	}
	g.bufs[c.rank] = send
	g.barrier()
	err := c.check(len(send))
	if err == nil {
		for r, b := range g.bufs {
			copy(recv[r*len(send):], b)
		}
	}
	g.barrier()
	return err
}
