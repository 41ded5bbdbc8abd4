package main

import (
	"math/rand"
	"testing"
)

// TestMarginEncodersDecode: the margin family's own encoders, with random
// registers, decode with golang.org/x/arch to the GNU text they claim.
func TestMarginEncodersDecode(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for range 200 {
		v := func() VReg { return VReg(r.Intn(32)) }
		g := gpPool[r.Intn(len(gpPool))]
		checkDecodes(t, []Word{umaxv(v(), v(), S4), fmovToGP(g, v())})
	}
}

// TestMarginEncodersRangeCheck: out-of-range fields panic.
func TestMarginEncodersRangeCheck(t *testing.T) {
	checkPanics(t, map[string]func(){
		"umaxv 2s":  func() { umaxv(0, 1, S2) },
		"umaxv V32": func() { umaxv(32, 1, S4) },
		"fmov R18":  func() { fmovToGP(18, 0) },
		"fmov R31":  func() { fmovToGP(31, 0) },
		"fmov V32":  func() { fmovToGP(0, 32) },
	})
}
