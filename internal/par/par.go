// Package par runs a fixed set of work chunks on up to GOMAXPROCS
// goroutines without allocating in steady state.
//
// Determinism is the caller's: the chunking must depend only on the problem
// (never on the worker count), and each output element must be produced by
// one chunk in a fixed order. par only decides which goroutine runs which
// chunk.
package par

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Job is a unit of parallel work split into chunks 0..n-1.
type Job interface {
	// RunChunk does chunk c. Chunks may run concurrently in any order.
	RunChunk(c int)
}

type batch struct {
	job    Job
	chunks int64
	next   atomic.Int64
	wg     sync.WaitGroup
}

// work runs chunks of b until none are left.
func (b *batch) work() {
	for b.step() {
	}
}

// step runs the next chunk of b, if one is left, and reports whether it did.
func (b *batch) step() bool {
	c := b.next.Add(1) - 1
	if c >= b.chunks {
		return false
	}
	b.job.RunChunk(int(c))
	return true
}

var (
	batches = sync.Pool{New: func() any { return new(batch) }}
	queue   = make(chan *batch)
	mu      sync.Mutex
	workers int
)

// ensureWorkers starts idle helper goroutines up to n. They live for the
// life of the process, blocked on the queue when idle.
func ensureWorkers(n int) {
	mu.Lock()
	for workers < n {
		workers++
		go func() {
			for b := range queue {
				b.work()
				b.wg.Done()
			}
		}()
	}
	mu.Unlock()
}

// Do runs j.RunChunk(c) for every c in [0, chunks) and returns when all
// are done. The calling goroutine works too; up to GOMAXPROCS−1 helpers
// join when idle. Nested calls are safe: a helper that is busy is simply not
// used.
//
// A helper counts as idle only once it waits on the queue again, a moment
// after it finished its last batch (or, on a busy machine, after the OS
// runs its thread again), so a call that comes right after another can find
// none. The caller therefore offers the batch again after each chunk it
// runs, while chunks are left, so that such a helper joins for the rest
// instead of leaving the whole call to one goroutine.
func Do(chunks int, j Job) {
	if chunks <= 0 {
		return
	}
	procs := min(runtime.GOMAXPROCS(0), chunks)
	if procs <= 1 {
		for c := 0; c < chunks; c++ {
			j.RunChunk(c)
		}
		return
	}
	ensureWorkers(procs - 1)
	b := batches.Get().(*batch)
	b.job, b.chunks = j, int64(chunks)
	b.next.Store(0)
	want := procs - 1 // helpers not yet joined
	want -= b.offer(want)
	for b.step() {
		if want > 0 && b.next.Load() < b.chunks {
			want -= b.offer(want)
		}
	}
	b.wg.Wait()
	b.job = nil
	batches.Put(b)
}

// offer hands b to up to n idle helpers and returns how many took it.
func (b *batch) offer(n int) int {
	took := 0
	for range n {
		b.wg.Add(1)
		select {
		case queue <- b:
			took++
		default:
			b.wg.Done() // no idle helper: do without it
		}
	}
	return took
}

// Chunks returns how many chunks of size step cover n items.
func Chunks(n, step int) int { return (n + step - 1) / step }

// Range returns the bounds of chunk c of size step within n items.
func Range(c, step, n int) (lo, hi int) {
	lo = c * step
	return lo, min(lo+step, n)
}
