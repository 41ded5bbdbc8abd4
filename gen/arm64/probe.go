package main

func init() { families["probe"] = probe }

// probe emits the NEON FMA peak probe: a loop of 16 independent FMLA
// chains on 4-lane vectors, more than FMA latency × pipes on the cores the
// kernels target (4 × 2 on Neoverse N1 and Cortex-A72, 4 × 4 on Neoverse
// V1/V2), so the FMA pipes never wait. The benchmarks time it to state the
// GEMMs as a fraction of the core's peak, as gen/amd64/probe.go's loops do
// on x86.
func probe(f *File) {
	e := f.Implement("fmaPeakNEON", "fmaPeakNEON runs iters iterations of 16 independent 4-lane FMLAs (none for iters < 1).")
	n := e.LoadArg("iters")
	acc := e.zeros(16)
	src := e.zeros(2)
	e.Op("CMP $1, %v", n)
	e.Op("BLT probe_done")
	e.Label("probe_loop")
	for _, v := range acc {
		e.I(fmla(v, src[0], src[1], S4))
	}
	e.Op("SUBS $1, %v, %v", n, n)
	e.Op("BNE probe_loop")
	e.Label("probe_done")
	e.RET()
}
