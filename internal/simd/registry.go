package simd

import (
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
)

// numLevels bounds the Level values a Table can hold.
const numLevels = int(NEON) + 1

// Table holds the implementations of one kernel, indexed by level. The
// generic implementation is always present. Assembly files add their bodies
// from init functions (Add), before any kernel runs.
type Table[F any] struct {
	name  string
	impls [numLevels]F
	has   [numLevels]bool
}

var (
	regMu    sync.Mutex
	built    [numLevels]bool // some kernel has a body at this level in this build
	kernels  []string
	resolved struct {
		once  sync.Once
		level Level
	}
	exercised [numLevels]atomic.Bool
)

// NewTable registers a kernel by name with its generic implementation.
func NewTable[F any](name string, generic F) *Table[F] {
	t := &Table[F]{name: name}
	t.impls[Generic], t.has[Generic] = generic, true
	regMu.Lock()
	kernels = append(kernels, name)
	regMu.Unlock()
	return t
}

// Add registers the body for level l. Call it only from init functions.
func (t *Table[F]) Add(l Level, f F) {
	t.impls[l], t.has[l] = f, true
	regMu.Lock()
	built[l] = true
	regMu.Unlock()
}

// Name is the kernel's registered name.
func (t *Table[F]) Name() string { return t.name }

// Get returns the body for the active level, falling back to the highest
// lower level of the same family that has one, and to generic.
func (t *Table[F]) Get() F {
	a := Active()
	if t.has[a] {
		return t.impls[a]
	}
	for l := a - 1; l > Generic; l-- {
		if t.has[l] && sameFamily(l, a) {
			return t.impls[l]
		}
	}
	return t.impls[Generic]
}

// At returns the body for level l when this build has one and the CPU can
// run it. Tests use it to compare every level with generic; each successful
// lookup marks l as exercised for MARGINLOSS_REQUIRE.
func (t *Table[F]) At(l Level) (F, bool) {
	if l < 0 || int(l) >= numLevels || !t.has[l] || !CPUSupports(l) {
		var zero F
		return zero, false
	}
	exercised[l].Store(true)
	return t.impls[l], true
}

// Levels lists the levels at which this kernel can run here, generic first.
func (t *Table[F]) Levels() []Level {
	var ls []Level
	for l := Generic; int(l) < numLevels; l++ {
		if t.has[l] && CPUSupports(l) {
			ls = append(ls, l)
		}
	}
	return ls
}

// forced, when ≥ 0, overrides the resolved level (benchmarks and tests that
// compare levels within one process).
var forced atomic.Int32

func init() { forced.Store(-1) }

// Force makes every wrapper dispatch at level l (which the CPU must support
// and the build must have; otherwise it returns an error and changes
// nothing) until the returned function restores the previous state. It is
// for benchmarks and tests that compare levels in one run; it is not safe to
// call while kernels run on other goroutines.
func Force(l Level) (restore func(), err error) {
	if l != Generic && (!CPUSupports(l) || !builtAt(l)) {
		return nil, fmt.Errorf("simd: cannot force %v: not supported by this CPU or build", l)
	}
	prev := forced.Swap(int32(l))
	return func() { forced.Store(prev) }, nil
}

func builtAt(l Level) bool {
	regMu.Lock()
	defer regMu.Unlock()
	return l >= 0 && int(l) < numLevels && built[l]
}

// Active is the level the kernels use: the highest level that the CPU
// supports and this build has assembly for, capped by MARGINLOSS_SIMD (or
// the level set by Force).
func Active() Level {
	if f := forced.Load(); f >= 0 {
		return Level(f)
	}
	resolved.once.Do(func() {
		var usable []Level
		for l := Generic + 1; int(l) < numLevels; l++ {
			regMu.Lock()
			b := built[l]
			regMu.Unlock()
			if b && CPUSupports(l) {
				usable = append(usable, l)
			}
		}
		resolved.level = resolve(usable, os.Getenv(EnvOverride))
	})
	return resolved.level
}

// Kernels lists the registered kernel names, sorted.
func Kernels() []string {
	regMu.Lock()
	defer regMu.Unlock()
	ks := append([]string(nil), kernels...)
	sort.Strings(ks)
	return ks
}

// EnvRequire names the environment variable listing levels (comma
// separated) that a test run must exercise.
const EnvRequire = "MARGINLOSS_REQUIRE"

// CheckRequired returns an error naming every level listed in
// MARGINLOSS_REQUIRE that no test looked up through Table.At. Call it at the
// end of a package's tests (TestMain).
func CheckRequired() error {
	req := os.Getenv(EnvRequire)
	if req == "" {
		return nil
	}
	var missing []string
	for _, name := range splitList(req) {
		l, ok := ParseLevel(name)
		if !ok {
			return fmt.Errorf("simd: %s names unknown level %q", EnvRequire, name)
		}
		if !exercised[l].Load() {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("simd: %s levels not exercised: %v (CPU or build lacks them, or the override capped them)", EnvRequire, missing)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if f := s[start:i]; f != "" {
				out = append(out, f)
			}
			start = i + 1
		}
	}
	return out
}

// Usable lists generic and every level that this build has assembly for and
// the CPU supports, lowest first, ignoring MARGINLOSS_SIMD (benchmarks force
// each in turn).
func Usable() []Level {
	ls := []Level{Generic}
	for l := Generic + 1; int(l) < numLevels; l++ {
		if builtAt(l) && CPUSupports(l) {
			ls = append(ls, l)
		}
	}
	return ls
}
