// Command amd64 generates the AVX2 and AVX-512 kernels of package asm with
// avo. Each kernel family lives in its own file and registers a builder in
// families from init; one run emits one family into one .s file:
//
//	go run ./amd64 -family normalize -out ../asm/normalize_amd64.s
//
// Every family builds on the one emitter in emit.go (ISA levels, constant
// tables, masked loads and stores, loops, reductions). Bodies implement the
// //go:noescape stubs hand-written in asm/<family>_amd64.go (Package +
// Implement), so go vet's asmdecl checks the frame layout against them.
// Numbers that asm's Go twins share come from internal/kconst. AVX2 bodies
// allocate from Y0–Y15 only; checkRegisters rejects an output that breaks
// the rule.
package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	. "github.com/mmcloughlin/avo/build"
)

// families maps a family name to the function that emits its bodies.
var families = map[string]func(){}

func main() {
	family := flag.String("family", "", "kernel family to generate")
	flag.Parse()
	build, ok := families[*family]
	if !ok {
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "amd64: -family must be one of %v\n", names)
		os.Exit(2)
	}
	// avo creates its -out file before it knows whether the build succeeds,
	// so a failed run would leave a truncated .s behind. Generate into a
	// temporary file instead and replace the output only on success (avo
	// exits non-zero on failure, so the copy below never runs then).
	out := flag.Lookup("out")
	final := out.Value.String()
	if final != "" {
		tmp, err := os.CreateTemp("", "marginloss-gen-*.s")
		if err != nil {
			fmt.Fprintf(os.Stderr, "amd64: %v\n", err)
			os.Exit(1)
		}
		tmp.Close()
		defer os.Remove(tmp.Name())
		if err := flag.Set("out", tmp.Name()); err != nil {
			fmt.Fprintf(os.Stderr, "amd64: %v\n", err)
			os.Exit(1)
		}
	}
	Package("github.com/marginloss/marginloss/asm")
	ConstraintExpr("!purego")
	build()
	Generate()
	if final != "" {
		if err := checkRegisters(out.Value.String()); err != nil {
			fmt.Fprintf(os.Stderr, "amd64: %s: %v\n", final, err)
			os.Exit(1)
		}
		if err := replaceFile(final, out.Value.String()); err != nil {
			fmt.Fprintf(os.Stderr, "amd64: %v\n", err)
			os.Exit(1)
		}
	}
}

// evex matches the registers that need AVX-512: X16–X31, Y16–Y31, Z0–Z31
// and K0–K7.
var evex = regexp.MustCompile(`\b([XY](1[6-9]|2[0-9]|3[01])|Z([0-9]|[12][0-9]|3[01])|K[0-7])\b`)

// checkRegisters enforces the register rule on a generated file: only
// bodies named …AVX512 may use a register that needs AVX-512. The AVX2
// bodies, and the VEX helpers that both levels call (gemm's packs), must
// run on CPUs without it; avo's allocator hands out Y16+ under register
// pressure, so a body that keeps more than 16 vectors live fails here.
func checkRegisters(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fn := ""
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "//"):
		case f[0] == "TEXT":
			fn = strings.TrimSuffix(strings.TrimPrefix(f[1], "·"), "(SB),")
		case fn != "" && !strings.HasSuffix(fn, "AVX512") && evex.MatchString(line):
			return fmt.Errorf("%s uses an AVX-512 register: %s", fn, strings.TrimSpace(line))
		}
	}
	return nil
}

// replaceFile copies src over dst (src may be on another file system).
func replaceFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("generated %s is empty", dst)
	}
	return os.WriteFile(dst, b, 0o644)
}
