// Command amd64 generates the AVX2 and AVX-512 kernels of package asm with
// avo. Each kernel family lives in its own file and registers a builder in
// families from init; one run emits one family into one .s file:
//
//	go run ./amd64 -family normalize -out ../asm/normalize_amd64.s
//
// Bodies implement the //go:noescape stubs hand-written in
// asm/<family>_amd64.go (Package + Implement), so go vet's asmdecl checks the
// frame layout against them. AVX2 bodies allocate from Y0–Y15 only.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"

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
		if err := replaceFile(final, out.Value.String()); err != nil {
			fmt.Fprintf(os.Stderr, "amd64: %v\n", err)
			os.Exit(1)
		}
	}
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
