package simd

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

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
	named    = map[string]any{} // Register and NewTable
	resolved struct {
		once  sync.Once
		level Level
	}
	exercised [numLevels]atomic.Bool
)

// NewTable creates the table of a kernel with its generic implementation
// and registers it under name (see TableOf). It panics when name is taken.
func NewTable[F any](name string, generic F) *Table[F] {
	t := &Table[F]{name: name}
	t.impls[Generic], t.has[Generic] = generic, true
	register(name, t)
	regMu.Lock()
	kernels = append(kernels, name)
	regMu.Unlock()
	return t
}

// Register records v under name, so that the module's tests, fuzz targets
// and benchmarks can reach a value that the kernel packages keep unexported
// (Lookup). Call it from package initialisation. It panics when name is
// taken, by a table or another value.
func Register(name string, v any) { register(name, v) }

func register(name string, v any) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := named[name]; dup {
		panic(fmt.Sprintf("simd: %q registered twice", name))
	}
	named[name] = v
}

// Lookup returns the value registered under name (by Register or NewTable)
// as a T. It fails when nothing is registered under name or the value is
// not a T.
func Lookup[T any](name string) (T, error) {
	regMu.Lock()
	v, ok := named[name]
	regMu.Unlock()
	var zero T
	if !ok {
		return zero, fmt.Errorf("simd: nothing registered as %q", name)
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("simd: %q is a %T, not a %v", name, v, reflect.TypeFor[T]())
	}
	return t, nil
}

// TableOf returns the kernel table registered under name by NewTable. It
// fails when there is none or its implementations are not of type F.
func TableOf[F any](name string) (*Table[F], error) {
	return Lookup[*Table[F]](name)
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
//
// It marks the level it returns as exercised for MARGINLOSS_REQUIRE, so
// that tests which Force each level and call the public wrappers count.
func (t *Table[F]) Get() F {
	a := Active()
	if t.has[a] {
		markExercised(a)
		return t.impls[a]
	}
	for l := a - 1; l > Generic; l-- {
		if t.has[l] && sameFamily(l, a) {
			markExercised(l)
			return t.impls[l]
		}
	}
	markExercised(Generic)
	return t.impls[Generic]
}

// markExercised records that a body of level l ran or was handed out. It
// stores only when the flag is not yet set, so that the dispatch path reads
// a shared cache line instead of writing it on every call.
func markExercised(l Level) {
	if !exercised[l].Load() {
		exercised[l].Store(true)
	}
}

// At returns the body for level l when this build has one and the CPU can
// run it. Tests use it to compare every level with generic; each successful
// lookup marks l as exercised for MARGINLOSS_REQUIRE.
func (t *Table[F]) At(l Level) (F, bool) {
	if l < 0 || int(l) >= numLevels || !t.has[l] || !CPUSupports(l) {
		var zero F
		return zero, false
	}
	markExercised(l)
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
		override := os.Getenv(EnvOverride)
		resolved.level = resolve(usable, override)
		if w := overrideWarning(override, runtime.GOARCH, resolved.level); w != "" {
			fmt.Fprintln(os.Stderr, w)
		}
	})
	return resolved.level
}

// Kernels lists the names of the kernel tables (NewTable), sorted; values
// registered with Register are not kernels.
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
// MARGINLOSS_REQUIRE that was never exercised: no test looked a body of it
// up through Table.At, and no wrapper dispatched to it through Table.Get.
// Call it at the end of a package's tests (TestMain).
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

// RunRequired runs a package's tests (m is its *testing.M) and returns the
// exit code for os.Exit: m's own, or 1 when the tests passed but a level
// named in MARGINLOSS_REQUIRE was never exercised. Call it from TestMain.
func RunRequired(m interface{ Run() int }) int {
	code := m.Run()
	if code == 0 {
		if err := CheckRequired(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL:", err)
			code = 1
		}
	}
	return code
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
