package fuzz

import (
	"os"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestMain fails the run when a level named in MARGINLOSS_REQUIRE was not
// exercised: the kernel targets' seeds run every level through Table.At.
func TestMain(m *testing.M) { os.Exit(simd.RunRequired(m)) }
