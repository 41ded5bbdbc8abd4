//go:build !purego

package asm

import (
	"runtime"
	"unsafe"

	"github.com/marginloss/marginloss/internal/simd"
)

// registerBF16 fills bf16Drivers for the x86 levels: the float32 kernels
// on rounded packs (gemmRoundBF16AVX2) at AVX2 and AVX-512. Where the CPU
// has AVX512_BF16 it also builds the VDPBF16PS driver on pair packs, and
// where it has AMX-BF16 with the tile state granted (simd.HasAMXBF16) the
// AMX driver, which the AVX-512 level then takes (TDPBF16PS peaks at
// 14.5–15.5× the AVX-512 FMA on the AMX Xeon of 2026-12-02, its GEMMs at
// the head's shapes run 3.1–6.1× the FMA peak); else it takes the
// VDPBF16PS one
// where VDPBF16PS outruns the FMAs
// (simd.BF16DotFast: AMD's Zen 4 and 5 run it at 1.6–2× the FMA's
// multiply-adds, 1.98× on the Zen 4 EPYC of 2026-12-02, where the BFloat16
// head ran 1.6–1.9× the Float32 one; the Sapphire Rapids-class Xeon
// measured here at 0.5×, so
// there the pair driver would be 2× slower and is not taken). The rule is
// fixed, not timed, so that the driver, and every bf16 result, is the same
// on every run. Every driver stays reachable to tests (bf16Alternates).
func registerBF16() {
	round2 := gemmAVX2Arch.withPrec(gemmBF16Round, nil, nil)
	round2.round = roundBF16AVX2
	bf16Drivers[simd.AVX2] = round2
	round512 := gemmAVX512Arch.withPrec(gemmBF16Round, nil, nil)
	round512.round = roundBF16AVX512
	bf16Drivers[simd.AVX512] = round512
	if !simd.HasBF16() || !simd.CPUSupports(simd.AVX512) {
		return
	}
	pair := gemmAVX512Arch.withPrec(gemmBF16Pair, gemmKernelBF16AVX512, gemmPairBF16AVX512)
	bf16Alternates["avx512-round"] = round512
	bf16Alternates["avx512-pair"] = pair
	switch {
	case simd.HasAMXBF16():
		amx := gemmAMXArch()
		bf16Alternates["avx512-amx"] = amx
		amxPeak = gemmPeakAMX
		bf16Drivers[simd.AVX512] = amx
		bf16Native.ok, bf16Native.level = true, simd.AVX512
	case simd.BF16DotFast():
		bf16Drivers[simd.AVX512] = pair
		bf16Native.ok, bf16Native.level = true, simd.AVX512
	}
}

// The AMX micro-tile (gen/amd64/amx.go): C 2×2 tiles of 16×16, A and B
// two tiles each of 16 k-pairs.
const gemmAMXMR, gemmAMXNR = 32, 32

// gemmAMXKC is the AMX driver's depth of one pass, in k values: the head's
// D = 512 in one pass, a sliver and a panel 32 KiB each.
const gemmAMXKC = 512

// gemmAMXArch is the AVX-512 level's bf16 driver on AMX tiles
// (gemmBF16Tile packs; the AVX-512 pair conversion, transposes, merge and
// scaling store): the kernel stores whole tiles to C itself when α = 1 and
// β = 0; other tiles, and the fused epilogue, go through the L1 tile
// buffer and the AVX-512 merge and scale.
func gemmAMXArch() *gemmArch {
	g := *gemmAVX512Arch
	g.mr, g.nr = gemmAMXMR, gemmAMXNR
	g.mc = roundUp(g.mc, gemmAMXMR)
	g.kc, g.kcDeep = gemmAMXKC/2, gemmAMXKC/2 // withPrec doubles them
	g.copyA = nil                             // Ã's packs are packTileA's
	g.cvt = gemmCvtBF16AVX512
	g.merge, g.scale = gemmMergeAMX, gemmScaleAMX
	g.session = &gemmAMXSession
	return g.withPrec(gemmBF16Tile, gemmKernelBF16AMX, gemmPairBF16AVX512)
}

// gemmMergeAMX is gemmMergeAVX512 (at most gemmAVX512MR rows a call) over
// the AMX tile's up to 32 rows.
func gemmMergeAMX(mr int, t, c *float32, ldc int, alpha, beta float32) {
	for r := 0; r < mr; r += gemmAVX512MR {
		gemmMergeAVX512(min(gemmAVX512MR, mr-r), (*float32)(unsafe.Add(unsafe.Pointer(t), 4*r*gemmAMXNR)),
			(*float32)(unsafe.Add(unsafe.Pointer(c), 4*r*ldc)), ldc, alpha, beta)
	}
}

// gemmScaleAMX is gemmScaleAVX512 over the AMX tile's rows, as
// gemmMergeAMX.
func gemmScaleAMX(mr int, t, c *float32, ldc int, rs, cs *float32, beta float32) {
	for r := 0; r < mr; r += gemmAVX512MR {
		gemmScaleAVX512(min(gemmAVX512MR, mr-r), (*float32)(unsafe.Add(unsafe.Pointer(t), 4*r*gemmAMXNR)),
			(*float32)(unsafe.Add(unsafe.Pointer(c), 4*r*ldc)), ldc,
			(*float32)(unsafe.Add(unsafe.Pointer(rs), 4*r)), cs, beta)
	}
}

// gemmKernelBF16AMXIn is the AMX micro-kernel on gemmBF16Tile packs
// (gemmKernelBF16TileGeneric, kc a positive multiple of gemmTilePairs),
// inside gemmAMXSession: the raw tile straight to C when it is a whole
// 32-row tile with α = 1 and β = 0, else through a tile on the stack and
// the AVX-512 merge. (β = 1 is not accumulated in the tiles: T + C, as the
// merge adds them, keeps GemmNTPackedScaled bitwise rs·(cs·GemmNTPacked)
// over several depth passes, and the tile accumulation measured no
// faster.)
func gemmKernelBF16AMXIn(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32) {
	if kc <= 0 || kc%gemmTilePairs != 0 {
		panicf("gemmKernelBF16AMX: depth %d is not a positive multiple of %d", kc, gemmTilePairs)
	}
	if mr == gemmAMXMR && alpha == 1 && beta == 0 {
		gemmTileBF16AMX(kc, a, b, c, ldc)
		return
	}
	var t [gemmAMXMR * gemmAMXNR]float32 // zeroed only on this path
	gemmTileBF16AMX(kc, a, b, &t[0], gemmAMXNR)
	gemmMergeAMX(mr, &t[0], c, ldc, alpha, beta)
}

// gemmKernelBF16AMX is gemmKernelBF16AMXIn in a session of its own, for
// callers outside the driver (microKernel, tests); the driver enters one
// session per GEMM call and runs gemmKernelBF16AMXIn.
func gemmKernelBF16AMX(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32) {
	gemmAMXSession.enter()
	defer gemmAMXSession.exit()
	gemmKernelBF16AMXIn(mr, kc, a, b, c, ldc, alpha, beta)
}

// gemmAMXSession is the AMX driver's session: the goroutine locked to its
// thread (the tile configuration is the thread's, and a goroutine that
// moved to another thread between two kernels would fault on a tile
// instruction there), then the configuration loaded once; exit releases
// the tiles and unlocks. Signals and preemption on the locked thread keep
// the tile state (the kernel saves it with the rest of the XSAVE state).
var gemmAMXSession = gemmSession{
	enter: func() {
		runtime.LockOSThread()
		gemmAMXEnter()
	},
	exit: func() {
		gemmAMXExit()
		runtime.UnlockOSThread()
	},
	kernel: gemmKernelBF16AMXIn,
}

// gemmTileBF16AMX stores the raw 32×32 product of an A sliver and a B
// panel of ks k-pairs (ks a positive multiple of 16) to c, row stride ldc:
// TILELOADD and TDPBF16PS emitted as bytes (gen/amd64/amx.go), between
// gemmAMXEnter and gemmAMXExit on a locked thread.
//
//go:noescape
func gemmTileBF16AMX(ks int, a, b, c *float32, ldc int)

// gemmAMXEnter loads the tile configuration of gemmTileBF16AMX
// (LDTILECFG).
func gemmAMXEnter()

// gemmAMXExit releases the tile state (TILERELEASE).
func gemmAMXExit()

// gemmPeakAMX runs n rounds of four independent TDPBF16PS on register
// tiles (each round 4·16·16·32·2 = 65536 flop): the AMX bf16 peak.
//
//go:noescape
func gemmPeakAMX(n int)

// gemmCvtBF16AVX512 is gemmCvtFunc by VCVTNE2PS2BF16 (n a multiple of 32).
//
//go:noescape
func gemmCvtBF16AVX512(dst, src *float32, n int)

// gemmKernelBF16AVX512 is the 12×32 micro-kernel on bf16 pair packs
// (gemmKernelBF16Generic), VDPBF16PS emitted as bytes (gen/amd64/evex.go).
//
//go:noescape
func gemmKernelBF16AVX512(mr, kc int, a, b, c *float32, ldc int, alpha, beta float32)

// gemmPairBF16AVX512 is the pair conversion of the packs
// (gemmPairGeneric), by VCVTNE2PS2BF16 and VPERMW.
//
//go:noescape
func gemmPairBF16AVX512(dst *float32, ldd int, src *float32, lds int, kc2, w int)

// gemmRoundBF16AVX2 rounds n floats (n a multiple of 8) at x to bfloat16 in
// place (roundBF16Generic, bitwise), VEX-encoded for both x86 levels.
//
//go:noescape
func gemmRoundBF16AVX2(x *float32, n int)

// roundBF16AVX2 is roundBF16Generic by gemmRoundBF16AVX2 and Go for the
// tail.
func roundBF16AVX2(x []float32) {
	n := len(x) &^ 7
	if n > 0 {
		gemmRoundBF16AVX2(&x[0], n)
	}
	roundBF16Generic(x[n:])
}

// gemmRoundBF16AVX512 is gemmRoundBF16AVX2 with ZMM registers and K masks,
// n a multiple of 16.
//
//go:noescape
func gemmRoundBF16AVX512(x *float32, n int)

// roundBF16AVX512 is roundBF16Generic by gemmRoundBF16AVX512, then
// gemmRoundBF16AVX2 and Go for the tail.
func roundBF16AVX512(x []float32) {
	n := len(x) &^ 15
	if n > 0 {
		gemmRoundBF16AVX512(&x[0], n)
	}
	roundBF16AVX2(x[n:])
}
