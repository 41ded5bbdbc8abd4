package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// gnuObjdumpA64 decodes the words with binutils' aarch64 objdump
// (aarch64-linux-gnu-objdump, Debian's binutils-aarch64-linux-gnu, or a
// multi-target objdump) and returns each one's text, spaces normalised.
// It skips the test when no such objdump is installed.
func gnuObjdumpA64(t *testing.T, ws []Word) []string {
	t.Helper()
	var tool string
	var args []string
	if p, err := exec.LookPath("aarch64-linux-gnu-objdump"); err == nil {
		tool, args = p, []string{"-D", "-b", "binary", "-m", "aarch64"}
	} else if p, err := exec.LookPath("objdump"); err == nil {
		if out, _ := exec.Command(p, "--help").CombinedOutput(); bytes.Contains(out, []byte("aarch64")) {
			tool, args = p, []string{"-D", "-b", "binary", "-m", "aarch64"}
		}
	}
	if tool == "" {
		t.Skip("no objdump for aarch64 (apt-get install binutils-aarch64-linux-gnu): cannot decode the BF16 words")
	}
	var code []byte
	for _, w := range ws {
		code = binary.LittleEndian.AppendUint32(code, w.Bits)
	}
	bin := filepath.Join(t.TempDir(), "code.bin")
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, append(args, bin)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", tool, err, out)
	}
	line := regexp.MustCompile(`^\s*[0-9a-f]+:\t[0-9a-f]{8}\s+\t?(.*)$`)
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			got = append(got, strings.Join(strings.Fields(m[1]), " "))
		}
	}
	if len(got) != len(ws) {
		t.Fatalf("objdump decoded %d words, want %d:\n%s", len(got), len(ws), out)
	}
	return got
}

// TestBF16Decodes: every BF16 encoding, over registers and pair indices
// that set each field bit, decodes with GNU objdump to its text; bad pair
// indices and registers panic.
func TestBF16Decodes(t *testing.T) {
	var ws []Word
	for _, d := range []VReg{0, 1, 15, 16, 31} {
		for _, m := range []VReg{0, 7, 8, 16, 31} {
			for i := 0; i < 4; i++ {
				ws = append(ws, bfdotElem(d, 31-d, m, i))
			}
			ws = append(ws, bfdot(d, m, 31-m), bfmmla(d, m, 31-m))
		}
	}
	got := gnuObjdumpA64(t, ws)
	for i, w := range ws {
		if got[i] != w.GNU {
			t.Errorf("%#08x: objdump decodes %q, encoder says %q", w.Bits, got[i], w.GNU)
		}
	}
	checkPanics(t, map[string]func(){
		"pair 4":  func() { bfdotElem(0, 0, 0, 4) },
		"pair -1": func() { bfdotElem(0, 0, 0, -1) },
		"V32":     func() { bfdot(32, 0, 0) },
	})
}

// TestGeneratedBF16WordsDecode: every bf16 WORD in the committed arm64
// assembly decodes, with GNU objdump, to the text in its comment.
func TestGeneratedBF16WordsDecode(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "asm", "*_arm64.s"))
	re := regexp.MustCompile(`WORD \$0x([0-9a-f]{8}) // (bf\S+ .*)$`)
	var ws []Word
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if m := re.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				v, _ := strconv.ParseUint(m[1], 16, 32)
				ws = append(ws, Word{uint32(v), strings.TrimSpace(m[2])})
			}
		}
	}
	if len(ws) == 0 {
		t.Skip("no bf16 WORDs in the committed arm64 assembly")
	}
	got := gnuObjdumpA64(t, ws)
	for i, w := range ws {
		if got[i] != w.GNU {
			t.Errorf("%#08x: objdump decodes %q, comment says %q", w.Bits, got[i], w.GNU)
		}
	}
	t.Logf("%d bf16 WORDs decoded", len(ws))
}
