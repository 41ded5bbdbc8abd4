package asm

// marginVector adapts a vector level's body to the kernel signature: it
// passes g's float32 constants, or runs the generic twin when g has none (a
// Margin outside what the bodies handle, or not built by NewMargin). Every
// level registers its body through it:
//
//	marginImpl.Add(level, marginVector(marginForward<ISA>))
func marginVector(body func(phi, dphi, t []float32, p marginParams)) func(phi, dphi, t []float32, g *Margin) {
	return func(phi, dphi, t []float32, g *Margin) {
		if g.vec.body == marginBodyNone {
			marginForwardGeneric(phi, dphi, t, g)
			return
		}
		body(phi, dphi, t, g.vec)
	}
}
