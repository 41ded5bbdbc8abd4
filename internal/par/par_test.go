package par

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type countJob struct{ hits []atomic.Int32 }

func (j *countJob) RunChunk(c int) { j.hits[c].Add(1) }

func TestDoRunsEveryChunkOnce(t *testing.T) {
	for _, procs := range []int{1, 2, 4, 7} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{0, 1, 2, 3, 17, 1000} {
			j := &countJob{hits: make([]atomic.Int32, n)}
			Do(n, j)
			for c := range j.hits {
				require.EqualValues(t, 1, j.hits[c].Load(), "procs %d n %d chunk %d", procs, n, c)
			}
		}
		runtime.GOMAXPROCS(old)
	}
}

type nestedJob struct{ inner *countJob }

func (j *nestedJob) RunChunk(c int) { Do(1, &countJob{hits: j.inner.hits[c : c+1]}) }

func TestDoNested(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	inner := &countJob{hits: make([]atomic.Int32, 64)}
	Do(64, &nestedJob{inner: inner})
	for c := range inner.hits {
		require.EqualValues(t, 1, inner.hits[c].Load())
	}
}

func TestDoNoAllocs(t *testing.T) {
	old := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(old)
	j := &countJob{hits: make([]atomic.Int32, 16)}
	Do(16, j) // warm up workers and pool
	allocs := testing.AllocsPerRun(100, func() { Do(16, j) })
	require.Zero(t, allocs)
}

// blockJob's chunks wait for release.
type blockJob struct{ release chan struct{} }

func (j *blockJob) RunChunk(int) { <-j.release }

// overlapJob's chunk 0 releases the helpers held on release; every chunk
// then takes a moment and records the most chunks seen running at once.
type overlapJob struct {
	release      chan struct{}
	active, most atomic.Int32
}

func (j *overlapJob) RunChunk(c int) {
	if c == 0 {
		close(j.release)
	}
	n := j.active.Add(1)
	for {
		m := j.most.Load()
		if n <= m || j.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	j.active.Add(-1)
}

// TestDoLateHelperJoins starts a call while every helper is busy, then
// frees them during the call's first chunk: they must join the rest of the
// call (2000 chunks of 1 ms) instead of leaving it all to the caller, as a
// call that found no idle helper at its start once did.
func TestDoLateHelperJoins(t *testing.T) {
	ensureWorkers(1)
	mu.Lock()
	helpers := workers
	mu.Unlock()
	old := runtime.GOMAXPROCS(helpers + 1)
	defer runtime.GOMAXPROCS(old)

	// Occupy every helper: each blocking send waits for an idle helper,
	// which takes one of the batch's chunks and blocks in it.
	busy := &blockJob{release: make(chan struct{})}
	hold := &batch{job: busy, chunks: int64(helpers)}
	hold.wg.Add(helpers)
	for range helpers {
		queue <- hold
	}

	j := &overlapJob{release: busy.release}
	Do(2000, j)
	hold.wg.Wait()
	require.GreaterOrEqual(t, j.most.Load(), int32(2), "no helper joined the call after it was freed")
}

func TestRange(t *testing.T) {
	require.Equal(t, 3, Chunks(10, 4))
	lo, hi := Range(2, 4, 10)
	require.Equal(t, [2]int{8, 10}, [2]int{lo, hi})
}
