package loss

// rowCE is one row of a softmax cross-entropy, the one form the margin
// head (Loss, ShardedHead), LossFromCosines and Focal.Softmax share: first
// the row's forward statistics (newRowCE, from the merged online
// log-sum-exp of its non-target logits and the target logit), then its
// loss and the target's gradient from them; every other class's gradient is
// p_j = e^(z_j − shift)·inv (asm.SoftmaxScaled), less ε/C with label
// smoothing.
//
// With r = Σ_{j≠y} e^(z_j − z_y), lse − z_y = log(1 + r) = softplus(log r)
// and p_y − 1 = −r/(1 + r) = −σ(log r). Working in log r keeps confident
// rows (r ≪ 1) precise and never overflows when the target sits far below
// the largest logit (r beyond float64).
type rowCE struct {
	lr    float64 // log r, finite or −Inf (no non-target mass)
	shift float32 // softmaxNorm's M
	inv   float64 // softmaxNorm's 1/S
}

// newRowCE takes the largest non-target logit mx (−Inf when there is none),
// sum = Σ_{j≠y} e^(z_j − mx) and the target logit zt.
func newRowCE(mx, sum, zt float64) rowCE {
	shift, inv := softmaxNorm(mx, sum, zt)
	return rowCE{lr: logRatio(sum, mx, zt), shift: shift, inv: inv}
}

// loss is the row's cross-entropy against (1−ε)·onehot(y) + ε/C, given the
// target logit zt and zs = Σ_j z_j over all C classes (target included;
// read only when ε ≠ 0): lse − z_y + ε·(z_y − zs/C).
func (r rowCE) loss(eps, zt, zs float64, classes int) float64 {
	l := softplus(r.lr)
	if eps != 0 {
		l += eps * (zt - zs/float64(classes))
	}
	return l
}

// target is ∂(row loss)/∂z_y + ε/C = p_y − 1 + ε: the −ε/C that every
// class's gradient carries, the target's included, is applied with the
// others'.
func (r rowCE) target(eps float64) float64 { return eps - sigmoid(r.lr) }

// py and q are p_y = σ(−log r) and 1 − p_y = σ(log r), each exact on its
// own (Focal's modulating factor needs q where it is tiny).
func (r rowCE) py() float64 { return sigmoid(-r.lr) }
func (r rowCE) q() float64  { return sigmoid(r.lr) }

// logPy is log p_y = −softplus(log r).
func (r rowCE) logPy() float64 { return -softplus(r.lr) }
