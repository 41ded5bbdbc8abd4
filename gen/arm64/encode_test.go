package main

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"
)

// gnu decodes w's bits with golang.org/x/arch.
func gnu(t *testing.T, w Word) string {
	t.Helper()
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], w.Bits)
	inst, err := arm64asm.Decode(b[:])
	if err != nil {
		t.Fatalf("%#08x (%s): %v", w.Bits, w.GNU, err)
	}
	return arm64asm.GNUSyntax(inst)
}

// checkDecodes fails for each of ws whose bits x/arch does not decode to
// the GNU text its encoder claims; it returns how many it checked.
func checkDecodes(t *testing.T, ws []Word) int {
	t.Helper()
	for _, w := range ws {
		if got := gnu(t, w); got != w.GNU {
			t.Errorf("%#08x: decodes as %q, encoder says %q", w.Bits, got, w.GNU)
		}
	}
	return len(ws)
}

// checkPanics fails for each case that returns instead of panicking.
func checkPanics(t *testing.T, cases map[string]func()) {
	t.Helper()
	for name, f := range cases {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// encoderCases builds every encoder with random registers for each
// arrangement, lane and shift it accepts.
func encoderCases(r *rand.Rand) []Word {
	v := func() VReg { return VReg(r.Intn(32)) }
	g := func() Reg { return gpPool[r.Intn(len(gpPool))] }
	fpArrs := []Arr{S2, S4, D2}
	var ws []Word
	type f3 func(d, n, m VReg, a Arr) Word
	for _, f := range []f3{fadd, fsub, fmul, fdiv, fmax, fmin, fmaxnm, fminnm} {
		for _, a := range append(fpArrs, S, D) {
			ws = append(ws, f(v(), v(), v(), a))
		}
	}
	for _, f := range []f3{fmla, fmls, faddp, fmaxp, fminp, fcmeq, fcmge, fcmgt, fabd} {
		for _, a := range fpArrs {
			ws = append(ws, f(v(), v(), v(), a))
		}
	}
	type f2 func(d, n VReg, a Arr) Word
	for _, f := range []f2{fabs, fneg, fsqrt, frintn, frintp, frintm, frintz} {
		for _, a := range append(fpArrs, S, D) {
			ws = append(ws, f(v(), v(), a))
		}
	}
	for _, f := range []f2{fcvtns, fcvtms, fcvtps, fcvtzs, scvtf, ucvtf, frecpe} {
		for _, a := range fpArrs {
			ws = append(ws, f(v(), v(), a))
		}
	}
	for _, a := range []Arr{S, D} {
		ws = append(ws, fmov(v(), v(), a), fcmp(v(), v(), a), fcmpZero(v(), a))
		for _, f := range []func(d, n, m, ra VReg, a Arr) Word{fmadd, fmsub, fnmadd, fnmsub} {
			ws = append(ws, f(v(), v(), v(), v(), a))
		}
	}
	for _, f := range []f2{fmaxv, fminv, fmaxnmv, fminnmv} {
		ws = append(ws, f(v(), v(), S4))
	}
	for _, f := range []f2{faddpScalar, fmaxpScalar, fminpScalar} {
		ws = append(ws, f(v(), v(), S2), f(v(), v(), D2))
	}
	for _, f := range []func(d, n, m VReg, a Arr, i int) Word{fmlaElem, fmlsElem, fmulElem} {
		for _, a := range fpArrs {
			max := 4
			if a == D2 {
				max = 2
			}
			for i := range max {
				ws = append(ws, f(v(), v(), v(), a, i))
			}
		}
	}
	intArrs := []Arr{B8, B16, H4, H8, S2, S4, D2}
	for _, f := range []f3{add, sub, cmgt} {
		for _, a := range intArrs {
			ws = append(ws, f(v(), v(), v(), a))
		}
	}
	for _, a := range intArrs {
		es := a.esize()
		for _, sh := range []int{0, 1, es / 2, es - 1} {
			ws = append(ws, shl(v(), v(), a, sh))
		}
		for _, sh := range []int{1, es / 2, es} {
			ws = append(ws, sshr(v(), v(), a, sh), ushr(v(), v(), a, sh))
		}
		ws = append(ws, dupGen(v(), g(), a))
		for i := range 128 / es {
			ws = append(ws, dupElem(v(), v(), a, i))
		}
	}
	for _, el := range []Arr{S4, D2} {
		for i := range 128 / el.esize() {
			ws = append(ws, insGen(v(), i, g(), el))
		}
	}
	for i := range 4 {
		ws = append(ws, dupScalar(v(), v(), i, S))
	}
	ws = append(ws, dupScalar(v(), v(), 1, D))
	for _, a := range []Arr{B8, B16} {
		for _, f := range []f3{and, bic, eor, bsl, bit, bif} {
			ws = append(ws, f(v(), v(), v(), a))
		}
		n := v()
		ws = append(ws, orr(v(), n, (n+1)%32, a), mov(v(), v(), a))
	}
	ws = append(ws, moviZero(v()))
	return ws
}

// TestEncodersDecode: every encoder, with random registers and every
// arrangement, lane and shift it takes, yields bits that x/arch decodes to
// the GNU text it claims (the check asm's TestARM64Words makes on the
// generated files, here for every encoder, used or not).
func TestEncodersDecode(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	n := 0
	for range 20 {
		n += checkDecodes(t, encoderCases(r))
	}
	t.Logf("%d encodings checked", n)
}

// TestEncodersRangeCheck: out-of-range fields panic instead of encoding
// something else.
func TestEncodersRangeCheck(t *testing.T) {
	checkPanics(t, map[string]func(){
		"V32":             func() { fadd(32, 0, 0, S4) },
		"arrangement 8b":  func() { fadd(0, 0, 0, B8) },
		"fmla scalar":     func() { fmla(0, 0, 0, S) },
		"fmaxv 2s":        func() { fmaxv(0, 0, S2) },
		"lane 4 of s":     func() { fmlaElem(0, 0, 0, S4, 4) },
		"lane 2 of d":     func() { fmlaElem(0, 0, 0, D2, 2) },
		"lane −1":         func() { dupElem(0, 0, S4, -1) },
		"shl 32":          func() { shl(0, 0, S4, 32) },
		"sshr 0":          func() { sshr(0, 0, S4, 0) },
		"ushr 33":         func() { ushr(0, 0, S4, 33) },
		"1d":              func() { add(0, 0, 0, D) },
		"R18":             func() { dupGen(0, 18, S4) },
		"R26":             func() { insGen(0, 0, 26, S4) },
		"R30":             func() { dupGen(0, 30, S4) },
		"R31":             func() { dupGen(0, 31, S4) },
		"orr n = m":       func() { orr(0, 1, 1, B16) },
		"and 4s":          func() { and(0, 1, 2, S4) },
		"fcvtzs scalar":   func() { fcvtzs(0, 0, S) },
		"reg list gap":    func() { regList(S4, []VReg{1, 3}) },
		"reg list length": func() { regList(S4, []VReg{1, 2, 3, 4, 5}) },
	})
}

// TestAllocatorNeverReserved: the GP allocator hands out every usable
// register once and none that Go reserves.
func TestAllocatorNeverReserved(t *testing.T) {
	e := &Func{name: "t"}
	seen := map[Reg]bool{}
	for range gpPool {
		r := e.GP()
		if r.reserved() || r > 25 || seen[r] {
			t.Fatalf("allocated %d", r)
		}
		seen[r] = true
	}
	checkPanics(t, map[string]func(){"allocator past the last register": func() { e.GP() }})
	if len(seen) != 25 {
		t.Errorf("%d registers, want 25 (R0–R17, R19–R25)", len(seen))
	}
}

// TestLayout: the frame offsets and sizes that asmdecl expects, for struct
// and array parameters too, whose types are declared in another file of
// the package (as marginParams is in asm/margin.go).
func TestLayout(t *testing.T) {
	const decls = `package p

type kind int32

type params struct {
	body kind
	m    int8
	a    float32
	k    [3]float32
	q    [2]struct{ lo, hi float64 }
}

type small struct{ a, b int8 }
`
	for _, tc := range []struct {
		sig  string
		size int
		want map[string]int
	}{
		{"func(x []float32) float32", 28, map[string]int{"x_base": 0, "x_len": 8, "x_cap": 16, "ret": 24}},
		{"func(dst, x []float32, a float32)", 52, map[string]int{"dst_base": 0, "x_len": 32, "a": 48}},
		{"func(z []float32, m, s float32) (float32, float32)", 40, map[string]int{"m": 24, "s": 28, "ret": 32, "ret1": 36}},
		{"func(a float32, n int) (lo float32, err int)", 32, map[string]int{"a": 0, "n": 8, "lo": 16, "err": 24}},
		{"func(x []float32, p params)", 80, map[string]int{"p_body": 24, "p_m": 28, "p_a": 32, "p_k_0": 36, "p_k_2": 44,
			"p_q_0_lo": 48, "p_q_0_hi": 56, "p_q_1_hi": 72}},
		{"func(b int8, s small, k kind, v [2]int16) small", 18, map[string]int{"b": 0, "s_a": 1, "s_b": 2, "k": 4, "v_0": 8, "v_1": 10,
			"ret_a": 16, "ret_b": 17}},
	} {
		src := fmt.Sprintf("package p\n%s\n", strings.Replace(tc.sig, "func", "func f", 1))
		dir := t.TempDir()
		writeFile(t, dir+"/p_arm64.go", src)
		writeFile(t, dir+"/p.go", decls)
		f, err := newFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		e := f.Implement("f", "f")
		if e.argSize != tc.size {
			t.Errorf("%s: size %d, want %d", tc.sig, e.argSize, tc.size)
		}
		for name, off := range tc.want {
			if s, ok := e.args[name]; !ok || s.off != off {
				t.Errorf("%s: %s at %d (present: %v), want %d", tc.sig, name, s.off, ok, off)
			}
		}
	}
}
