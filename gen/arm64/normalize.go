package main

func init() { families["normalize"] = normalize }

// normalize emits the NEON bodies of asm's normalize family: sumSquares
// (the sum behind L2Norm), scale, mul, add and normalizeBackward, the algorithms of
// gen/amd64/normalize.go.
func normalize(f *File) {
	sumSquaresBody(f)
	scaleBody(f)
	mulBody(f)
	addBody(f)
	normalizeBackwardBody(f)
}

// sumSquaresBody: Σ x_k² with fused multiply-adds into four accumulators
// (sixteen lanes), folded before the scalar tail.
func sumSquaresBody(f *File) {
	e := f.Implement("sumSquaresNEON", "sumSquaresNEON is the NEON body of sumSquares: Σ x_k², summed in vector lanes.")
	xp, n := e.LoadArg("x_base"), e.LoadArg("x_len")
	acc := e.zeros(unroll)
	var s VReg
	e.stream("sum", n, []Reg{xp}, func(st *Step) {
		xs := st.Load(xp)
		if st.Tail {
			e.I(fmadd(s, xs[0], xs[0], s, S))
			return
		}
		for j, x := range xs {
			e.I(fmla(acc[j], x, x, S4))
		}
	}, func() { s = e.sumLanes(acc) })
	e.StoreF(s, "ret")
	e.RET()
}

// scaleBody: dst_k = a·x_k, one rounding, as the generic twin.
func scaleBody(f *File) {
	e := f.Implement("scaleNEON", "scaleNEON is the NEON body of Scale: dst[k] = a·x[k] for k < len(x); len(dst) ≥ len(x).")
	dp, xp, n := e.LoadArg("dst_base"), e.LoadArg("x_base"), e.LoadArg("x_len")
	a := e.loadArgSplat("a")
	e.stream("mul", n, []Reg{xp, dp}, func(st *Step) {
		xs := st.Load(xp)
		for _, x := range xs {
			e.I(fmul(x, x, a, S4))
		}
		st.Store(dp, xs)
	}, nil)
	e.RET()
}

// mulBody: dst_k = x_k·y_k, one rounding, as the generic twin.
func mulBody(f *File) {
	e := f.Implement("mulNEON", "mulNEON is the NEON body of Mul: dst[k] = x[k]·y[k] for k < len(x); len(dst), len(y) ≥ len(x).")
	dp, xp, yp, n := e.LoadArg("dst_base"), e.LoadArg("x_base"), e.LoadArg("y_base"), e.LoadArg("x_len")
	e.stream("mul", n, []Reg{xp, yp, dp}, func(st *Step) {
		xs := st.Load(xp)
		ys := st.Load(yp)
		for k, x := range xs {
			e.I(fmul(x, x, ys[k], S4))
		}
		st.Store(dp, xs)
	}, nil)
	e.RET()
}

// addBody: dst_k = x_k + y_k, one rounding, as the generic twin.
func addBody(f *File) {
	e := f.Implement("addNEON", "addNEON is the NEON body of Add: dst[k] = x[k] + y[k] for k < len(x); len(dst), len(y) ≥ len(x).")
	dp, xp, yp, n := e.LoadArg("dst_base"), e.LoadArg("x_base"), e.LoadArg("y_base"), e.LoadArg("x_len")
	e.stream("add", n, []Reg{xp, yp, dp}, func(st *Step) {
		xs := st.Load(xp)
		ys := st.Load(yp)
		for k, x := range xs {
			e.I(fadd(x, x, ys[k], S4))
		}
		st.Store(dp, xs)
	}, nil)
	e.RET()
}

// normalizeBackwardBody: p = Σ (x_k·inv)·dy_k, then
// dx_k = (dy_k − q_k·p)·inv + radial·q_k with q_k = x_k·inv. Each step
// reads its elements of dy before it writes the same elements of dx, so dx
// may alias dy.
func normalizeBackwardBody(f *File) {
	e := f.Implement("normalizeBackwardNEON",
		"normalizeBackwardNEON is the NEON body of NormalizeBackward; len(dx) and len(dy) are ≥ len(x), dx may alias dy.")
	dxp, dyp, xp := e.LoadArg("dx_base"), e.LoadArg("dy_base"), e.LoadArg("x_base")
	n := e.LoadArg("x_len")
	inv := e.loadArgSplat("inv")

	// Pass 1: the dot product. In the tail the products are scalar, so
	// that no lane beyond the element adds anything (0·inv is NaN for
	// an infinite inv).
	acc := e.zeros(unroll)
	var p VReg
	e.stream("dot", n, []Reg{xp, dyp}, func(st *Step) {
		xs, dys := st.Load(xp), st.Load(dyp)
		if st.Tail {
			e.I(fmul(xs[0], xs[0], inv, S), fmadd(p, xs[0], dys[0], p, S))
			return
		}
		for _, x := range xs {
			e.I(fmul(x, x, inv, S4))
		}
		for j, x := range xs {
			e.I(fmla(acc[j], x, dys[j], S4)) // acc += q·dy
		}
	}, func() { p = e.sumLanes(acc) })
	e.I(dupElem(p, p, S4, 0))

	// Pass 2: the gradient.
	radial := e.loadArgSplat("radial")
	e.stream("grad", n, []Reg{xp, dyp, dxp}, func(st *Step) {
		qs, ts := st.Load(xp), st.Load(dyp)
		ds := st.Vs(len(qs))
		for _, q := range qs {
			e.I(fmul(q, q, inv, S4)) // q = x·inv
		}
		for j, q := range qs {
			e.I(fmls(ts[j], q, p, S4)) // t = dy − q·p
		}
		for j, q := range qs {
			e.I(fmul(ds[j], q, radial, S4)) // radial·q
		}
		for j, t := range ts {
			e.I(fmla(ds[j], t, inv, S4)) // t·inv + radial·q
		}
		st.Store(dxp, ds)
	}, nil)
	e.RET()
}
