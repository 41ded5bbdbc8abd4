package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func init() { families["probe"] = probe }

// probe emits the FMA peak probes: loops of 12 independent FMA chains (more
// than latency × ports, so the FMA units never wait), 12 FMAs per iteration.
func probe() {
	for _, s := range isas {
		name := "fmaPeak" + s.suffix
		implement(name, fmt.Sprintf("%s runs iters iterations of 12 independent vector FMAs.", name))
		n := Load(Param("iters"), GP64())
		acc := make([]reg.VecVirtual, 12)
		for i := range acc {
			acc[i] = s.vec()
			VXORPS(acc[i], acc[i], acc[i])
		}
		a, b := s.vec(), s.vec()
		VXORPS(a, a, a)
		VXORPS(b, b, b)
		Label(name + "_loop")
		TESTQ(n, n)
		JZ(LabelRef(name + "_done"))
		for i := range acc {
			VFMADD231PS(a, b, acc[i])
		}
		DECQ(n)
		JMP(LabelRef(name + "_loop"))
		Label(name + "_done")
		ret()
	}
	bf16Peak()
}

// bf16Peak emits bf16PeakAVX512: the same loop with VDPBF16PS (12
// independent chains Z0–Z11 over Z12 and Z13, 12·16·2 multiply-adds, 4·96
// flops counting each as two, per iteration), on physical registers since
// the instruction is emitted as bytes.
func bf16Peak() {
	name := "bf16PeakAVX512"
	implement(name, name+" runs iters iterations of 12 independent VDPBF16PS.")
	n := Load(Param("iters"), GP64())
	for i := 0; i < 14; i++ {
		VPXORD(zmms[i], zmms[i], zmms[i])
	}
	Label(name + "_loop")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	for i := 0; i < 12; i++ {
		emitVDPBF16PS(zmms[13], zmms[12], zmms[i])
	}
	DECQ(n)
	JMP(LabelRef(name + "_loop"))
	Label(name + "_done")
	ret()
}
