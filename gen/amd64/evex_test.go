package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mmcloughlin/avo/reg"
)

// objdump decodes each instruction's bytes with GNU objdump (binutils)
// and returns the Intel text of each, in order. It skips the test when
// objdump is not installed or cannot decode x86-64.
func objdump(t *testing.T, insns []evexInsn) []string {
	t.Helper()
	path, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("objdump (binutils) not installed: cannot decode the EVEX encodings")
	}
	var code []byte
	for _, e := range insns {
		code = append(code, e.Bytes...)
	}
	bin := filepath.Join(t.TempDir(), "code.bin")
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path, "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	// "   0:	62 92 1e 40 52 c6    	vdpbf16ps zmm0,zmm28,zmm30"
	line := regexp.MustCompile(`^\s*([0-9a-f]+):\t([0-9a-f ]+)\t(.*)$`)
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		got = append(got, strings.Join(strings.Fields(m[3]), " "))
	}
	if len(got) != len(insns) {
		t.Fatalf("objdump decoded %d instructions, want %d:\n%s", len(got), len(insns), out)
	}
	return got
}

// evexCases is every form the encoders accept, over registers that set
// each of the four register-number bits R/B/X/V and their high (R′, V′)
// bits in turn.
func evexCases() []evexInsn {
	regs := []int{0, 1, 7, 8, 15, 16, 23, 24, 31}
	var cs []evexInsn
	for _, d := range regs {
		for _, v := range regs {
			for _, m := range regs {
				cs = append(cs, vdpbf16ps(d, v, m), vcvtne2ps2bf16(d, v, m))
			}
		}
		for _, m := range regs {
			cs = append(cs, vcvtneps2bf16(d, m))
		}
	}
	return cs
}

// amxCases is every AMX form the encoders accept: each tile, and base and
// index registers that set REX-like high bits (B̄, X̄) in turn, RSP and
// R12 as bases (SIB base 100).
func amxCases() []evexInsn {
	var cs []evexInsn
	gps := []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 11, 12, 14, 15}
	for tm := 0; tm < 8; tm++ {
		cs = append(cs, tilezero(tm))
		for _, base := range gps {
			for _, index := range gps {
				if index == 4 {
					continue
				}
				cs = append(cs, tileloadd(tm, base, index), tilestored(base, index, tm))
			}
		}
		for a := 0; a < 8; a++ {
			for b := 0; b < 8; b++ {
				if tm != a && tm != b && a != b {
					cs = append(cs, tdpbf16ps(tm, a, b))
				}
			}
		}
	}
	for _, base := range []int{0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 14, 15} {
		cs = append(cs, ldtilecfg(base))
	}
	return append(cs, tilerelease())
}

// TestEVEXDecodes: objdump decodes every encoding to its mnemonic.
func TestEVEXDecodes(t *testing.T) {
	cs := append(evexCases(), amxCases()...)
	got := objdump(t, cs)
	for i, e := range cs {
		if got[i] != e.Intel {
			t.Errorf("% x: objdump decodes %q, encoder says %q", e.Bytes, got[i], e.Intel)
		}
	}
	t.Logf("%d encodings decoded", len(cs))
}

// TestEVEXRange: registers outside 0..31 panic.
func TestEVEXRange(t *testing.T) {
	for name, f := range map[string]func(){
		"vdpbf16ps d=32":      func() { vdpbf16ps(32, 0, 0) },
		"vdpbf16ps v=-1":      func() { vdpbf16ps(0, -1, 0) },
		"vdpbf16ps m=40":      func() { vdpbf16ps(0, 0, 40) },
		"vcvtne2ps2bf16 v=32": func() { vcvtne2ps2bf16(0, 32, 0) },
		"vcvtneps2bf16 d=-2":  func() { vcvtneps2bf16(-2, 0) },
		"vcvtneps2bf16 m=32":  func() { vcvtneps2bf16(0, 32) },
		"tileloadd t=8":       func() { tileloadd(8, 0, 1) },
		"tileloadd base=rbp":  func() { tileloadd(0, 5, 1) },
		"tileloadd base=r13":  func() { tileloadd(0, 13, 1) },
		"tileloadd index=rsp": func() { tileloadd(0, 0, 4) },
		"tileloadd base=16":   func() { tileloadd(0, 16, 1) },
		"tilestored t=-1":     func() { tilestored(0, 1, -1) },
		"tilestored index=-1": func() { tilestored(0, -1, 0) },
		"tdpbf16ps d=a":       func() { tdpbf16ps(1, 1, 2) },
		"tdpbf16ps a=b":       func() { tdpbf16ps(0, 2, 2) },
		"tdpbf16ps b=8":       func() { tdpbf16ps(0, 1, 8) },
		"tilezero t=8":        func() { tilezero(8) },
		"ldtilecfg base=rsp":  func() { ldtilecfg(4) },
		"ldtilecfg base=r13":  func() { ldtilecfg(13) },
		"ldtilecfg base=16":   func() { ldtilecfg(16) },
	} {
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

// TestGeneratedBytesDecode: every BYTE line in the committed amd64
// assembly decodes, with objdump, to the mnemonic in its comment.
func TestGeneratedBytesDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "asm", "*_amd64.s"))
	if err != nil {
		t.Fatal(err)
	}
	byteRe := regexp.MustCompile(`BYTE \$0x([0-9a-f]{2})`)
	var insns []evexInsn
	var where []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, l := range strings.Split(string(b), "\n") {
			if !strings.Contains(l, "BYTE $") {
				continue
			}
			code, comment, ok := strings.Cut(l, "//")
			if !ok {
				t.Errorf("%s:%d: BYTE line without its mnemonic: %s", f, n+1, l)
				continue
			}
			var e evexInsn
			for _, m := range byteRe.FindAllStringSubmatch(code, -1) {
				v, _ := strconv.ParseUint(m[1], 16, 8)
				e.Bytes = append(e.Bytes, byte(v))
			}
			e.Intel = strings.TrimSpace(comment)
			insns = append(insns, e)
			where = append(where, filepath.Base(f)+":"+strconv.Itoa(n+1))
		}
	}
	if len(insns) == 0 {
		t.Skip("no BYTE lines in the committed assembly")
	}
	got := objdump(t, insns)
	for i, e := range insns {
		if got[i] != e.Intel {
			t.Errorf("%s: % x decodes as %q, comment says %q", where[i], e.Bytes, got[i], e.Intel)
		}
	}
	t.Logf("%d BYTE lines decoded", len(insns))
}

// TestRegisterNumbers: the emitters' register lookups find every Z and Y
// register by its own avo value (ymmNum once compared Zi.AsY(), a
// different value, with Yi and panicked on every Y register).
func TestRegisterNumbers(t *testing.T) {
	ys := []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y7, reg.Y8, reg.Y15, reg.Y16, reg.Y31}
	zs := []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z7, reg.Z8, reg.Z15, reg.Z16, reg.Z31}
	want := []int{0, 1, 7, 8, 15, 16, 31}
	for i := range want {
		if got := ymmNum(ys[i]); got != want[i] {
			t.Errorf("ymmNum(%v) = %d, want %d", ys[i], got, want[i])
		}
		if got := zmmNum(zs[i]); got != want[i] {
			t.Errorf("zmmNum(%v) = %d, want %d", zs[i], got, want[i])
		}
	}
}
