package asm

import (
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestGemmBlockingRule shows the blocking each level gets on the CPUs the
// project runs on (it is logged with -v) and checks the rule's invariants:
// the B̃ panel within half of L1d and the Ã block within half of L2 unless
// a clamp applies, multiples of 8 and MR.
func TestGemmBlockingRule(t *testing.T) {
	cpus := []struct {
		name string
		c    simd.Caches
	}{
		{"Zen 3 (EPYC 7xx3)", simd.Caches{L1D: 32 << 10, L2: 512 << 10}},
		{"Zen 5 (EPYC 9xx5)", simd.Caches{L1D: 48 << 10, L2: 1 << 20}},
		{"Sapphire Rapids", simd.Caches{L1D: 48 << 10, L2: 2 << 20}},
		{"Neoverse N1", simd.Caches{L1D: 64 << 10, L2: 1 << 20}},
		{"Apple M1 (P)", simd.Caches{L1D: 128 << 10, L2: 12 << 20}},
	}
	tiles := []struct {
		level  string
		mr, nr int
	}{{"avx2", 6, 16}, {"avx512", 12, 32}, {"neon", 8, 12}}
	for _, cpu := range cpus {
		for _, tl := range tiles {
			kc, mc, nc := gemmBlocking(cpu.c, tl.mr, tl.nr)
			t.Logf("%-18s %-6s %2d×%-2d kc=%3d mc=%3d nc=%d  (B̃ panel %3d KiB, Ã block %4d KiB)",
				cpu.name, tl.level, tl.mr, tl.nr, kc, mc, nc, kc*tl.nr*4>>10, mc*kc*4>>10)
			if kc%8 != 0 || kc < 64 || kc > 512 || mc%tl.mr != 0 || mc < 4*tl.mr || mc > 960 || nc%tl.nr != 0 && nc != 1024 {
				t.Errorf("%s %s: kc=%d mc=%d nc=%d break the multiples or clamps", cpu.name, tl.level, kc, mc, nc)
			}
			if kc > 64 && kc*tl.nr*4 > cpu.c.L1D/2 {
				t.Errorf("%s %s: B̃ panel %d B > L1d/2", cpu.name, tl.level, kc*tl.nr*4)
			}
			if mc > 4*tl.mr && mc*kc*4 > cpu.c.L2/2 {
				t.Errorf("%s %s: Ã block %d B > L2/2", cpu.name, tl.level, mc*kc*4)
			}
		}
	}
	c := simd.CacheSizes()
	t.Logf("this CPU (%s): L1d %d KiB, L2 %d KiB", c.Source, c.L1D>>10, c.L2>>10)
	for _, l := range simd.Usable() {
		if g, ok := gemmDrivers[l]; ok {
			kc, mc, nc := g.blocking()
			wkc, wmc, wnc := gemmBlocking(c, g.mr, g.nr)
			t.Logf("this CPU %v: kc=%d mc=%d nc=%d", l, kc, mc, nc)
			if kc != wkc || mc != wmc || nc != roundUp(wnc, g.nr) || g.kcDeep != min(kc, 256) {
				t.Errorf("%v: driver has kc=%d (deep %d) mc=%d nc=%d, rule gives %d, %d, %d", l, kc, g.kcDeep, mc, nc, wkc, wmc, wnc)
			}
		}
	}
}

func TestParseCaches(t *testing.T) {
	c, err := simd.ParseCaches("l1d=48K, l2=1M")
	if err != nil || c.L1D != 48<<10 || c.L2 != 1<<20 {
		t.Fatalf("ParseCaches = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "l1d=48K", "l1d=8K,l2=1M", "l3=1M,l1d=32K,l2=1M", "l1d=x,l2=1M", "l1d=48K;l2=1M"} {
		if _, err := simd.ParseCaches(bad); err == nil {
			t.Errorf("ParseCaches(%q) = nil error", bad)
		}
	}
}
