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
	Package("github.com/marginloss/marginloss/asm")
	ConstraintExpr("!purego")
	build()
	Generate()
}
