package simd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/cpuid/v2"
)

// Caches are the per-core data cache sizes the GEMM blocking is derived
// from, in bytes.
type Caches struct {
	L1D, L2 int
	// Source says where the sizes came from: "cpuid", "default" (the CPU did
	// not report them) or "MARGINLOSS_CACHE".
	Source string
}

// DefaultCaches are assumed when the CPU reports no sizes: the smallest of
// the CPUs the kernels are tuned for (Zen 3, Neoverse N1 class).
var DefaultCaches = Caches{L1D: 32 << 10, L2: 512 << 10, Source: "default"}

var caches = sync.OnceValue(func() Caches {
	if v, ok := os.LookupEnv("MARGINLOSS_CACHE"); ok {
		c, err := ParseCaches(v)
		if err == nil {
			return c
		}
		fmt.Fprintf(os.Stderr, "marginloss: ignoring MARGINLOSS_CACHE: %v\n", err)
	}
	c := Caches{L1D: cpuid.CPU.Cache.L1D, L2: cpuid.CPU.Cache.L2, Source: "cpuid"}
	if c.L1D < 16<<10 || c.L2 < 128<<10 {
		return DefaultCaches
	}
	return c
})

// CacheSizes returns the L1d and L2 sizes of the CPU the process runs on:
// from MARGINLOSS_CACHE when set ("l1d=48K,l2=1M"), else from CPUID (leaf 4
// on Intel, 0x8000001D on AMD; on arm64 what the OS exposes), else
// DefaultCaches. It is computed once.
func CacheSizes() Caches { return caches() }

// ParseCaches parses MARGINLOSS_CACHE's form: "l1d=SIZE,l2=SIZE", SIZE in
// bytes with an optional K or M suffix (binary).
func ParseCaches(s string) (Caches, error) {
	c := Caches{Source: "MARGINLOSS_CACHE"}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return Caches{}, fmt.Errorf("%q: want key=size", f)
		}
		mul := 1
		switch {
		case strings.HasSuffix(v, "K"):
			mul, v = 1<<10, strings.TrimSuffix(v, "K")
		case strings.HasSuffix(v, "M"):
			mul, v = 1<<20, strings.TrimSuffix(v, "M")
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1<<30/mul {
			return Caches{}, fmt.Errorf("%q: bad size", f)
		}
		switch strings.ToLower(k) {
		case "l1d":
			c.L1D = n * mul
		case "l2":
			c.L2 = n * mul
		default:
			return Caches{}, fmt.Errorf("%q: unknown cache %q (want l1d or l2)", f, k)
		}
	}
	if c.L1D < 16<<10 || c.L2 < 128<<10 {
		return Caches{}, fmt.Errorf("%q: want l1d ≥ 16K and l2 ≥ 128K", s)
	}
	return c, nil
}
