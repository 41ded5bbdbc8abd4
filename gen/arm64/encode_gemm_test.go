package main

import (
	"math/rand"
	"testing"
)

// gemmEncoderCases builds encode_gemm.go's encoders with random registers
// for every arrangement, prefetch operation and a spread of offsets.
func gemmEncoderCases(r *rand.Rand) []Word {
	v := func() VReg { return VReg(r.Intn(32)) }
	g := func() Reg { return gpPool[r.Intn(len(gpPool))] }
	var ws []Word
	for _, f := range []func(d, n, m VReg, a Arr) Word{trn1, trn2, zip1, zip2} {
		for _, a := range []Arr{B8, B16, H4, H8, S2, S4, D2} {
			ws = append(ws, f(v(), v(), v(), a))
		}
	}
	for op := range prfNames {
		for _, off := range []int{-256, -1, 0, 1, 4, 44, 47, 255, r.Intn(512) - 256} {
			ws = append(ws, prfum(op, g(), off))
		}
	}
	return ws
}

// TestGemmEncodersDecode: encode_gemm.go's encodings decode, with
// golang.org/x/arch, to the GNU text they claim.
func TestGemmEncodersDecode(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	n := 0
	for range 20 {
		n += checkDecodes(t, gemmEncoderCases(r))
	}
	t.Logf("%d encodings checked", n)
}

// TestGemmEncodersRangeCheck: out-of-range fields panic.
func TestGemmEncodersRangeCheck(t *testing.T) {
	checkPanics(t, map[string]func(){
		"trn1 V32":       func() { trn1(32, 0, 0, S4) },
		"trn2 scalar":    func() { trn2(0, 0, 0, S) },
		"zip1 1d":        func() { zip1(0, 0, 0, D) },
		"prfum 256":      func() { prfum(pstl1keep, 0, 256) },
		"prfum −257":     func() { prfum(pstl1keep, 0, -257) },
		"prfum R18":      func() { prfum(pstl1keep, 18, 0) },
		"prfum R29":      func() { prfum(pldl1keep, 29, 0) },
		"prfum bad op":   func() { prfum(0x1f, 0, 0) },
		"zip2 bad arr":   func() { zip2(0, 0, 0, Arr(0)) },
		"trn1 V32 src":   func() { trn1(0, 0, 32, D2) },
		"prfum R31 (sp)": func() { prfum(pldl2keep, 31, 0) },
	})
}
