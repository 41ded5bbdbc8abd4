package simd

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolve(t *testing.T) {
	x86 := []Level{AVX2, AVX512}
	for _, tc := range []struct {
		supported []Level
		override  string
		want      Level
	}{
		{nil, "", Generic},
		{nil, "avx512", Generic},
		{x86, "", AVX512},
		{x86, "avx512", AVX512},
		{x86, "AVX2", AVX2},
		{x86, "generic", Generic},
		{x86, "neon", Generic},
		{x86, "bogus", AVX512},
		{[]Level{AVX2}, "avx512", AVX2},
		{[]Level{NEON}, "", NEON},
		{[]Level{NEON}, "avx2", Generic},
		{[]Level{NEON}, "neon", NEON},
		{[]Level{NEON}, "generic", Generic},
		{[]Level{NEON}, "bogus", NEON},
	} {
		require.Equal(t, tc.want, resolve(tc.supported, tc.override), "%v %q", tc.supported, tc.override)
	}
}

func TestParseLevel(t *testing.T) {
	for l := Generic; l <= NEON; l++ {
		got, ok := ParseLevel(l.String())
		require.True(t, ok)
		require.Equal(t, l, got)
	}
	_, ok := ParseLevel("sse")
	require.False(t, ok)
	require.Equal(t, "unknown", Level(42).String())
}

// testTable is created once per test binary: names register only once.
var testTable = NewTable("testKernel", func() int { return 0 })

func init() { Register("testValue", 42) }

func TestTable(t *testing.T) {
	tb := testTable
	require.Equal(t, "testKernel", tb.Name())
	require.Contains(t, Kernels(), "testKernel")
	f, ok := tb.At(Generic)
	require.True(t, ok)
	require.Equal(t, 0, f())
	require.Equal(t, []Level{Generic}, tb.Levels())
	_, ok = tb.At(Level(99))
	require.False(t, ok)
	require.Equal(t, 0, tb.Get()())
}

func TestRegistry(t *testing.T) {
	tb, err := TableOf[func() int]("testKernel")
	require.NoError(t, err)
	require.Same(t, testTable, tb)
	_, err = TableOf[func() float32]("testKernel")
	require.ErrorContains(t, err, `"testKernel" is a *simd.Table[func() int], not a *simd.Table[func() float32]`)
	_, err = TableOf[func() int]("testValue")
	require.Error(t, err)

	v, err := Lookup[int]("testValue")
	require.NoError(t, err)
	require.Equal(t, 42, v)
	_, err = Lookup[string]("testValue")
	require.Error(t, err)
	_, err = Lookup[int]("missing")
	require.ErrorContains(t, err, `nothing registered as "missing"`)

	require.NotContains(t, Kernels(), "testValue")
	require.PanicsWithValue(t, `simd: "testValue" registered twice`, func() { Register("testValue", 1) })
	require.Panics(t, func() { NewTable("testValue", func() int { return 1 }) })
}

// TestGetMarksExercised: dispatching through Get counts as exercising the
// level whose body it returns.
func TestGetMarksExercised(t *testing.T) {
	restore, err := Force(Generic)
	require.NoError(t, err)
	defer restore()
	exercised[Generic].Store(false)
	_ = testTable.Get()
	require.True(t, exercised[Generic].Load())
}

func TestLevelFamilies(t *testing.T) {
	require.Len(t, levelFamily, len(levelNames))
	for l := Generic; int(l) < numLevels; l++ {
		// every assembly level belongs to a family, and only those
		require.Equal(t, l != Generic, levelFamily[l] != "", "%v", l)
		require.Equal(t, l != Generic, sameFamily(l, l), "%v", l)
	}
	require.True(t, sameFamily(AVX2, AVX512))
	require.False(t, sameFamily(AVX2, NEON))
	require.False(t, sameFamily(Generic, Generic))
	require.False(t, sameFamily(Level(-1), Level(numLevels)))
}

func TestSplitList(t *testing.T) {
	require.Equal(t, []string{"avx2", "avx512"}, splitList("avx2,,avx512,"))
	require.Empty(t, splitList(""))
}

func TestCheckRequired(t *testing.T) {
	t.Setenv(EnvRequire, "")
	require.NoError(t, CheckRequired())
	t.Setenv(EnvRequire, "generic")
	exercised[Generic].Store(false)
	require.Error(t, CheckRequired())
	exercised[Generic].Store(true)
	require.NoError(t, CheckRequired())
	t.Setenv(EnvRequire, "warp")
	require.Error(t, CheckRequired())
}

func TestForce(t *testing.T) {
	before := Active()
	restore, err := Force(Generic)
	require.NoError(t, err)
	require.Equal(t, Generic, Active())
	restore()
	require.Equal(t, before, Active())
	_, err = Force(Level(99))
	require.Error(t, err)
}

func TestOverrideWarning(t *testing.T) {
	for _, tc := range []struct {
		override, goarch string
		got              Level
		want             []string // substrings; none: no warning
	}{
		{"", "amd64", AVX512, nil},
		{"avx2", "amd64", AVX2, nil},
		{"AVX512", "amd64", AVX512, nil},
		{"generic", "arm64", Generic, nil},
		{"neon", "arm64", NEON, nil},
		{"bogus", "amd64", AVX512, []string{`MARGINLOSS_SIMD="bogus"`, "generic, avx2, avx512, neon", "using avx512"}},
		{"sse", "arm64", NEON, []string{`"sse"`, "valid: generic, avx2, avx512, neon", "using neon"}},
		{"neon", "amd64", Generic, []string{"MARGINLOSS_SIMD=neon", "for arm64", "amd64", "using generic", "valid here: generic, avx2, avx512"}},
		{"avx2", "arm64", Generic, []string{"MARGINLOSS_SIMD=avx2", "for x86", "valid here: generic, neon"}},
		{"avx2", "riscv64", Generic, []string{"valid here: generic)"}},
	} {
		w := overrideWarning(tc.override, tc.goarch, tc.got)
		if len(tc.want) == 0 {
			require.Empty(t, w, "%q on %s", tc.override, tc.goarch)
			continue
		}
		for _, s := range tc.want {
			require.Contains(t, w, s, "%q on %s", tc.override, tc.goarch)
		}
	}
}

// TestOverrideWarnsOnce runs this test binary again with a bad
// MARGINLOSS_SIMD: the warning appears on stderr exactly once, however
// often the level is asked for.
func TestOverrideWarnsOnce(t *testing.T) {
	if os.Getenv("SIMD_WARN_CHILD") != "" {
		for range 3 {
			Active()
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestOverrideWarnsOnce$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "SIMD_WARN_CHILD=1", EnvOverride+"=bogus")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot re-execute the test binary here (user-mode emulation without binfmt): %v", err)
	} else {
		require.NoError(t, err, stderr.String())
	}
	require.Equal(t, 1, strings.Count(stderr.String(), "marginloss: ignoring MARGINLOSS_SIMD=\"bogus\""), stderr.String())
}

// TestHasBF16 logs what HasBF16 detected and, when MARGINLOSS_EXPECT_BF16
// is 1 or 0 (CI under qemu-aarch64 -cpu max and -cpu neoverse-n1), requires
// it.
func TestHasBF16(t *testing.T) {
	t.Logf("HasBF16 = %v", HasBF16())
	switch os.Getenv("MARGINLOSS_EXPECT_BF16") {
	case "1":
		if !HasBF16() {
			t.Fatal("HasBF16 = false, MARGINLOSS_EXPECT_BF16 = 1")
		}
	case "0":
		if HasBF16() {
			t.Fatal("HasBF16 = true, MARGINLOSS_EXPECT_BF16 = 0")
		}
	}
}
