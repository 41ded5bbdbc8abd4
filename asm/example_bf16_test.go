package asm_test

import (
	"fmt"

	"github.com/marginloss/marginloss/asm"
)

// 1 + 2⁻⁸ lies halfway between the bfloat16 values 1 and 1 + 2⁻⁷: it rounds
// to the even one, 1. π keeps 8 significant bits.
func ExampleRoundBF16() {
	fmt.Println(asm.RoundBF16(1+1.0/256), asm.RoundBF16(1+3.0/256), asm.RoundBF16(3.14159265))
	// Output: 1 1.015625 3.140625
}

// The bits of a bfloat16 are the top 16 of the float32 nearest to it.
func ExampleBF16Bits() {
	fmt.Printf("%#04x %#04x\n", asm.BF16Bits(1), asm.BF16Bits(-2.5))
	// Output: 0x3f80 0xc020
}

// The products of the bf16 GEMMs are those of the operands rounded to
// bfloat16, summed in float32: 1 + 2⁻¹⁰ rounds to 1, so the dot product of
// (1 + 2⁻¹⁰, 1) with (1, 1) is 2, where GemmNT gives 2 + 2⁻¹⁰.
func ExampleGemmNTBF16() {
	a := []float32{1 + 1.0/1024, 1}
	b := []float32{1, 1}
	c, c32 := make([]float32, 1), make([]float32, 1)
	asm.GemmNTBF16(1, 1, 2, 1, a, 2, b, 2, 0, c, 1)
	asm.GemmNT(1, 1, 2, 1, a, 2, b, 2, 0, c32, 1)
	fmt.Println(c[0], c32[0])
	// Output: 2 2.0009766
}

// dX̂ = G·W with G (1×2) and W (2×3) rounded to bf16.
func ExampleGemmNNBF16() {
	g := []float32{0.5, -1}
	w := []float32{
		1, 2, 3,
		4, 5, 6,
	}
	c := make([]float32, 3)
	asm.GemmNNBF16(1, 3, 2, 1, g, 2, w, 3, 0, c, 3)
	fmt.Println(c)
	// Output: [-3.5 -4 -4.5]
}

// dŴ = Gᵀ·X̂ with G (2×1) and X̂ (2×2) rounded to bf16.
func ExampleGemmTNBF16() {
	g := []float32{1, 2}
	x := []float32{
		0.25, 0.5,
		1, 2,
	}
	c := make([]float32, 2)
	asm.GemmTNBF16(1, 2, 2, 1, g, 1, x, 2, 0, c, 2)
	fmt.Println(c)
	// Output: [2.25 4.5]
}

// BF16Native tells whether the bf16 GEMMs use bf16 dot-product
// instructions here; the results have the same numerics either way.
func ExampleBF16Native() {
	native := asm.BF16Native()
	_ = native // true on AVX512_BF16 CPUs where VDPBF16PS is the faster, and on arm64 with FEAT_BF16
	fmt.Println("ok")
	// Output: ok
}
