package loss_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestMain fails the run when a level named in MARGINLOSS_REQUIRE was never
// exercised by the loss package's own calls (see forEachLevel).
func TestMain(m *testing.M) { os.Exit(simd.RunRequired(m)) }

// forEachLevel runs f once per kernel level that this CPU and build offer
// (generic first), with every asm wrapper dispatching at that level, the way
// Go's crypto packages test all implementations in one process. The tests
// that use it are not parallel: simd.Force is process-wide.
//
// MARGINLOSS_TEST_LEVELS (a comma-separated list of level names), when
// set, keeps only those levels: CI runs the suite once per MARGINLOSS_SIMD
// cap with the cap's own level, and under qemu-aarch64 at neon alone (the
// generic level ran natively), so that no level runs twice.
func forEachLevel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	var only []string
	if v := os.Getenv("MARGINLOSS_TEST_LEVELS"); v != "" {
		only = strings.Split(v, ",")
	}
	for _, l := range simd.Usable() {
		if only != nil && !slices.Contains(only, l.String()) {
			continue
		}
		t.Run(l.String(), func(t *testing.T) {
			restore, err := simd.Force(l)
			if err != nil {
				t.Fatal(err)
			}
			defer restore()
			f(t)
		})
	}
}

// tileBudget is the TileBudget the tests' margin-head constructors
// (marginSpec.api, allHeads) set; forEachPath switches it.
var tileBudget int

// forEachPath runs f with the backward pass reading the kept forward tiles
// (the default budget) and with it recomputing them (budget < 0).
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	for _, p := range []struct {
		name   string
		budget int
	}{{"kept", 0}, {"recompute", -1}} {
		t.Run(p.name, func(t *testing.T) {
			old := tileBudget
			tileBudget = p.budget
			defer func() { tileBudget = old }()
			f(t)
		})
	}
}

// forEachLevelAndPath is forEachLevel over forEachPath.
func forEachLevelAndPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	forEachLevel(t, func(t *testing.T) { forEachPath(t, f) })
}
