package optim_test

import (
	"os"
	"testing"

	"github.com/marginloss/marginloss/internal/simd"
)

// TestMain fails the run when MARGINLOSS_REQUIRE names a level that no
// test exercised.
func TestMain(m *testing.M) { os.Exit(simd.RunRequired(m)) }
