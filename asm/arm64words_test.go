package asm

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/arch/arm64/arm64asm"
)

// The arm64 kernels are emitted by gen/arm64, which encodes the
// floating-point and SIMD instructions that Go's assembler lacks itself and
// writes them as WORD with their GNU syntax in a comment. These tests run on
// every GOARCH: they read the generated files, so that a wrong encoding is
// caught on any machine, not only when the NEON tests run on arm64.

var (
	// wordLine is a WORD directive: its value, then what follows.
	wordLine = regexp.MustCompile(`^WORD\s+\$(\S+)\s*(.*)$`)
	// goReserved are the registers Go keeps from assembly on arm64 (R18
	// platform, R26 closure context, R27 REGTMP, R28 g, R29 frame pointer,
	// R30 link register), as Go assembly names them.
	goReserved = regexp.MustCompile(`\b(R18|R2[6-9]|R30|g)\b`)
	// gnuReserved are the same registers in decoded GNU syntax.
	gnuReserved = regexp.MustCompile(`\b[wx](18|2[6-9]|30)\b`)
)

// arm64Sources returns the generated arm64 assembly files of the package.
func arm64Sources(t *testing.T) map[string][]string {
	names, err := filepath.Glob("*_arm64.s")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no *_arm64.s files: run go generate ./...")
	}
	files := map[string][]string{}
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = strings.Split(string(src), "\n")
	}
	return files
}

// normGNU folds case and runs of white space, the only differences allowed
// between a WORD's comment and the decoder's text.
func normGNU(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// TestARM64Words decodes every WORD of every *_arm64.s with
// golang.org/x/arch/arm64/arm64asm and requires its GNU syntax to equal the
// WORD's trailing comment. It also fails on a WORD without a comment and on
// any use of R18 or R26–R30, in Go syntax or inside a WORD.
func TestARM64Words(t *testing.T) {
	words, bf16Words := 0, 0
	for name, lines := range arm64Sources(t) {
		for i, line := range lines {
			where := name + ":" + strconv.Itoa(i+1)
			code, _, _ := strings.Cut(strings.TrimSpace(line), "//")
			code = strings.TrimSpace(code)
			if goReserved.MatchString(code) {
				t.Errorf("%s: %s: uses a register Go reserves (R18, R26–R30)", where, strings.TrimSpace(line))
			}
			m := wordLine.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil {
				continue
			}
			words++
			bits, err := strconv.ParseUint(m[1], 0, 32)
			if err != nil || !strings.HasPrefix(m[1], "0x") {
				t.Errorf("%s: %s: want WORD $0x followed by 32 bits in hex", where, strings.TrimSpace(line))
				continue
			}
			comment, ok := strings.CutPrefix(m[2], "//")
			if !ok || strings.TrimSpace(comment) == "" {
				t.Errorf("%s: %s: WORD without its instruction in a comment", where, strings.TrimSpace(line))
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(comment), "bf") {
				// FEAT_BF16 (bfdot, bfmmla): x/arch cannot decode them;
				// gen/arm64's TestGeneratedBF16WordsDecode decodes every
				// one with binutils' aarch64 objdump.
				bf16Words++
				continue
			}
			var b [4]byte
			binary.LittleEndian.PutUint32(b[:], uint32(bits))
			inst, err := arm64asm.Decode(b[:])
			if err != nil {
				t.Errorf("%s: %#08x (%s) does not decode: %v", where, bits, strings.TrimSpace(comment), err)
				continue
			}
			got := arm64asm.GNUSyntax(inst)
			if normGNU(got) != normGNU(comment) {
				t.Errorf("%s: %#08x decodes as %q, the comment says %q", where, bits, got, strings.TrimSpace(comment))
			}
			if gnuReserved.MatchString(got) {
				t.Errorf("%s: %#08x (%s) uses a register Go reserves (x18, x26–x30)", where, bits, got)
			}
		}
	}
	if words == 0 {
		t.Error("no WORD in the *_arm64.s files")
	}
	t.Logf("%d WORDs, %d of them FEAT_BF16 (decoded in gen/arm64)", words, bf16Words)
}

// TestARM64ExpConstants: lse_arm64.s holds each constant of expf as the
// float32 Go rounds it to (the generator reads internal/kconst, as expf
// does).
func TestARM64ExpConstants(t *testing.T) {
	lines := arm64Sources(t)["lse_arm64.s"]
	if lines == nil {
		t.Fatal("no lse_arm64.s")
	}
	data := map[uint32]bool{}
	for _, line := range lines {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "DATA" || !strings.HasPrefix(f[2], "$") {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(f[2], "$"), 0, 32)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		data[uint32(v)] = true
	}
	for _, c := range []float32{log2e, ln2Hi, ln2Lo, expP0, expP1, expP2, expP3, expP4, expP5} {
		if !data[math.Float32bits(c)] {
			t.Errorf("constant %v (%#x) missing from lse_arm64.s", c, math.Float32bits(c))
		}
	}
}
