package par

import (
	"runtime"
	"sync/atomic"
	"testing"

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

func TestRange(t *testing.T) {
	require.Equal(t, 3, Chunks(10, 4))
	lo, hi := Range(2, 4, 10)
	require.Equal(t, [2]int{8, 10}, [2]int{lo, hi})
}
