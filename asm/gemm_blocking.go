package asm

import "github.com/marginloss/marginloss/internal/simd"

// gemmBlocking derives a level's blocking from the per-core cache sizes,
// for the driver's loop order (gemm): each packed B̃ panel (kc×NR) is
// reused by every sliver of the Ã block before the next panel, and the Ã
// block (mc×kc) by every panel of a column block (nc).
//
//   - kc: the B̃ panel takes at most half of L1d, kc·NR·4 ≤ L1d/2, leaving
//     the other half to the Ã sliver streaming through and to C's tile;
//     a multiple of 8 in [64, 512]. A product up to kc deep takes one
//     pass (C written once); deeper ones take passes of near-equal depth of
//     at most kcDeep = min(kc, 256), so that one pass's Ã block, the C rows
//     it updates and the B source it streams share L2 (measured on the
//     Xeon: GemmNN 256×512×10000 at AVX2 gains 7 points of peak).
//   - mc: the Ã block takes at most half of L2, mc·kc·4 ≤ L2/2; a multiple
//     of MR in [4·MR, 960].
//   - nc: 1024 columns (the B̃ block, kc×nc, streams from L3 or memory
//     once per row block; the head's products rarely have more than one
//     row block).
//
// For example (TestGemmBlockingRule): Zen 3 (32 KiB L1d, 512 KiB L2) gives
// AVX2 (6×16) kc = 256, mc = 252; Zen 5 and Sapphire Rapids (48 KiB L1d,
// 1–2 MiB L2) give AVX2 kc = 384, mc = 336 or 672 and AVX-512 (12×32)
// kc = 192, mc = 672 or 960; Neoverse N1 (64 KiB, 1 MiB) gives NEON
// (8×12) kc = 512, mc = 256.
func gemmBlocking(c simd.Caches, mr, nr int) (kc, mc, nc int) {
	kc = min(max(c.L1D/2/(4*nr)/8*8, 64), 512)
	mc = min(max(c.L2/2/(4*kc)/mr*mr, 4*mr), 960/mr*mr)
	return kc, mc, 1024
}

// cacheBlocked returns g with its kc, kcDeep, mc and nc from gemmBlocking
// for this CPU's caches.
func cacheBlocked(g gemmArch) gemmArch {
	kc, mc, nc := gemmBlocking(simd.CacheSizes(), g.mr, g.nr)
	g.kc, g.kcDeep, g.mc, g.nc = kc, min(kc, 256), mc, roundUp(nc, g.nr)
	return g
}
