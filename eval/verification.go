package eval

import (
	"fmt"
	"math"
	"sort"

	"github.com/marginloss/marginloss/loss"
)

const (
	// DefaultFolds is the number of folds VerifyOptions.Folds = 0 stands for.
	DefaultFolds = 10
	// DefaultFARTarget is the false-accept rate VerifyOptions.FARTarget = 0
	// stands for.
	DefaultFARTarget = 1e-3

	// ROCThresholds is the number of thresholds of the accuracy search and
	// of VerifyResult.TPR and FPR: i·0.01 for i = 0 … 399.
	ROCThresholds = 400
	// VALThresholds is the number of thresholds of the VAL search: i·0.001
	// for i = 0 … 3999.
	VALThresholds = 4000
)

// rocThreshold and valThreshold are np.arange(0, 4, 0.01)[i] and
// np.arange(0, 4, 0.001)[i]: numpy fills an arange as start + i·step, which
// is float64(i)·step for start 0.
func rocThreshold(i int) float64 { return float64(i) * 0.01 }
func valThreshold(i int) float64 { return float64(i) * 0.001 }

// VerifyOptions configures Verification. The zero value is insightface's
// default protocol: 10 folds, VAL at FAR = 1e-3.
type VerifyOptions struct {
	Folds     int     // number of contiguous folds; 0 means DefaultFolds, 1 means train = test = all pairs
	FARTarget float64 // the false-accept rate VAL is read at; 0 means DefaultFARTarget
}

// VerifyResult holds what insightface's evaluate() computes, plus the mean
// accuracy threshold.
type VerifyResult struct {
	Accuracy, AccuracyStd float64   // mean and population std of the fold accuracies
	Threshold             float64   // mean of the folds' best thresholds, on the squared distance
	VAL, VALStd, FAR      float64   // as calculate_val returns them
	TPR, FPR              []float64 // the ROC over thresholds 0, 0.01, …, 3.99, as calculate_roc returns it
}

// Verification scores the pairs (a_i, b_i), labelled same[i] (true: the
// same identity), by insightface's verification protocol: evaluate() of
// recognition/eval/verification.py with pca = 0, which is
// calculate_roc(np.arange(0, 4, 0.01), …) followed by
// calculate_val(np.arange(0, 4, 0.001), …, far_target).
//
// a and b are n×d; row i of each is one side of pair i. The definitions,
// all in float64:
//
//   - Each row is widened to float64 and divided by its float64 L2 norm
//     (sklearn.preprocessing.normalize; a zero row stays zero). The
//     distance of pair i is Σ_j (â_ij − b̂_ij)², the squared Euclidean
//     distance of the unit vectors, 2 − 2·cos, in [0, 4]. Sums run in
//     numpy's pairwise order (np.sum, np.linalg.norm; sklearn's einsum
//     norm may differ in the last bit, which moves a count only for a
//     distance within an ulp of a threshold).
//   - Threshold t_i is float64(i)·0.01 for the accuracy search and the ROC
//     (i < 400) and float64(i)·0.001 for VAL (i < 4000). A pair is
//     predicted "same" when its distance is strictly below the threshold.
//   - The pairs are split into k contiguous folds in order, as
//     sklearn's KFold(k, shuffle=False) does: each holds ⌊n/k⌋ pairs and
//     the first n mod k hold one more. Fold f is the test set and the other
//     pairs the train set; with k = 1 both are all pairs.
//   - Accuracy: on each fold, the train accuracy (TP+TN)/n_train is
//     computed at every t_i; the first threshold reaching the maximum is
//     the fold's best, and the fold's accuracy is the test accuracy at it.
//     Accuracy and AccuracyStd are the mean and the population (ddof 0)
//     standard deviation over folds; Threshold is the mean of the best
//     thresholds.
//   - TPR[i] and FPR[i] are the means over folds of the test folds'
//     TP/(TP+FN) and FP/(FP+TN) at t_i, taken as 0 where the denominator
//     is 0.
//   - VAL: on each fold, the train false-accept rate far_i = FP/n_diff is
//     computed at every VAL threshold (a non-decreasing curve with
//     far_0 = 0). If max far_i < FARTarget the fold's threshold is 0
//     (nothing is accepted). Otherwise it is
//     scipy.interpolate.interp1d(far, t, kind='slinear')(FARTarget) as
//     scipy ≤ 1.8 computed it (see below). The fold's VAL and FAR are the
//     test fold's TP/n_same and FP/n_diff at that threshold; VAL, VALStd
//     and FAR are their mean, population std and mean over folds.
//
// The interpolation. scipy ≥ 1.9 refuses repeated x values ("Expect x to
// not have duplicates"), and every real FAR curve has them, so insightface's
// own calculate_val fails there (insightface issues #2152, #2290). scipy ≤
// 1.8 built a degree-1 B-spline with knots (x_0, x_0, x_1, …, x_m−1,
// x_m−1), coefficients t (the x are already sorted; its stable mergesort
// keeps their order) and no check for repeats, and evaluated it with
// de Boor's recursion. That gives, with x = far, f = FARTarget and m =
// 4000:
//
//   - the segment: j is the smallest index in 1 … m−2 with x_j > f, or
//     m−1 if there is none;
//   - if x_{j−1} = x_j (possible only for j = m−1) the result is exactly 0;
//   - otherwise, with w = 1/(x_j − x_{j−1}), the result is
//     t_{j−1}·(w·(x_j − f)) + t_j·(w·(f − x_{j−1})), each product rounded.
//
// So on a plateau (repeated FAR values) the segment starts at the plateau's
// last threshold: a target equal to a plateau's FAR gives that plateau's
// last threshold (up to the rounding of w·(x_j − f)), and a target between
// two plateaus interpolates between the lower plateau's last threshold and
// the upper plateau's first. At the end, a target equal to the curve's
// maximum uses the last segment, which gives 0 when the curve's last two
// values are equal (a flat top) and t_{m−1} (up to rounding) otherwise.
//
// Errors: loss.ErrShape when a and b differ in shape, a Data length is not
// Rows·Cols, or len(same) ≠ n; loss.ErrNonFinite when an input is NaN or
// ±Inf; loss.ErrParam where insightface raises: no pairs, Folds < 0, more
// folds than pairs (KFold), FARTarget < 0 (interp1d's range) or NaN, and a
// train or test fold without a same pair or without a different pair
// (calculate_val_far divides by their counts).
//
// The result is bitwise reproducible: the work is serial and in a fixed
// order.
func Verification(a, b loss.Matrix, same []bool, opt VerifyOptions) (VerifyResult, error) {
	n, d := a.Rows, a.Cols
	switch {
	case n < 0 || d < 0 || len(a.Data) != n*d:
		return VerifyResult{}, fmt.Errorf("%w: a is %d×%d with %d values", loss.ErrShape, a.Rows, a.Cols, len(a.Data))
	case b.Rows != n || b.Cols != d || len(b.Data) != n*d:
		return VerifyResult{}, fmt.Errorf("%w: b is %d×%d with %d values, a is %d×%d", loss.ErrShape, b.Rows, b.Cols, len(b.Data), n, d)
	case len(same) != n:
		return VerifyResult{}, fmt.Errorf("%w: len(same) = %d for %d pairs", loss.ErrShape, len(same), n)
	}
	k := opt.Folds
	if k == 0 {
		k = DefaultFolds
	}
	target := opt.FARTarget
	if target == 0 {
		target = DefaultFARTarget
	}
	switch {
	case n == 0:
		return VerifyResult{}, fmt.Errorf("%w: no pairs to verify", loss.ErrParam)
	case opt.Folds < 0:
		return VerifyResult{}, fmt.Errorf("%w: Folds = %d, want ≥ 0", loss.ErrParam, opt.Folds)
	case k > n:
		return VerifyResult{}, fmt.Errorf("%w: %d folds for %d pairs: a fold needs at least one pair (KFold)", loss.ErrParam, k, n)
	case math.IsNaN(target) || target < 0:
		return VerifyResult{}, fmt.Errorf("%w: FARTarget = %v, want ≥ 0 (the FAR curve starts at 0)", loss.ErrParam, opt.FARTarget)
	}
	if i := firstNonFinite(a.Data); i >= 0 {
		return VerifyResult{}, fmt.Errorf("%w: a[%d][%d] = %v", loss.ErrNonFinite, i/d, i%d, a.Data[i])
	}
	if i := firstNonFinite(b.Data); i >= 0 {
		return VerifyResult{}, fmt.Errorf("%w: b[%d][%d] = %v", loss.ErrNonFinite, i/d, i%d, b.Data[i])
	}
	folds := kfold(n, k)
	nSame := 0
	for _, s := range same {
		if s {
			nSame++
		}
	}
	for f, fd := range folds {
		testSame := 0
		for _, s := range same[fd.lo:fd.hi] {
			if s {
				testSame++
			}
		}
		testDiff := fd.hi - fd.lo - testSame
		trainSame, trainDiff := nSame-testSame, n-nSame-testDiff
		if k == 1 {
			trainSame, trainDiff = testSame, testDiff
		}
		if testSame == 0 || testDiff == 0 || trainSame == 0 || trainDiff == 0 {
			return VerifyResult{}, fmt.Errorf("%w: fold %d of %d (pairs %d…%d): its train set has %d same and %d different pairs, its test set %d and %d; "+
				"every train and test fold needs both (insightface's calculate_val_far divides by their counts)",
				loss.ErrParam, f, k, fd.lo, fd.hi-1, trainSame, trainDiff, testSame, testDiff)
		}
	}

	dist := distances(a, b)
	res := VerifyResult{TPR: make([]float64, ROCThresholds), FPR: make([]float64, ROCThresholds)}
	acc := make([]float64, k)
	best := make([]float64, k)
	val := make([]float64, k)
	far := make([]float64, k)
	tprs := make([][]float64, k)
	fprs := make([][]float64, k)
	farTrain := make([]float64, VALThresholds)
	var train, test split
	for f, fd := range folds {
		train.fill(dist, same, fd, k == 1, true)
		test.fill(dist, same, fd, k == 1, false)

		// calculate_roc: the first threshold of maximal train accuracy.
		bestI, bestAcc := 0, math.Inf(-1)
		for i := 0; i < ROCThresholds; i++ {
			if a := train.accuracy(rocThreshold(i)); a > bestAcc {
				bestI, bestAcc = i, a
			}
		}
		tprs[f] = make([]float64, ROCThresholds)
		fprs[f] = make([]float64, ROCThresholds)
		for i := 0; i < ROCThresholds; i++ {
			tprs[f][i], fprs[f][i] = test.rates(rocThreshold(i))
		}
		best[f] = rocThreshold(bestI)
		acc[f] = test.accuracy(best[f])

		// calculate_val.
		maxFAR := math.Inf(-1)
		for i := range farTrain {
			_, farTrain[i] = train.valFAR(valThreshold(i))
			maxFAR = max(maxFAR, farTrain[i])
		}
		thr := 0.0
		if maxFAR >= target {
			thr = interpSlinear18(farTrain, valThreshold, target)
		}
		val[f], far[f] = test.valFAR(thr)
	}
	// np.mean(tprs, 0): an axis-0 reduction adds the folds' rows in order.
	for i := 0; i < ROCThresholds; i++ {
		var st, sf float64
		for f := 0; f < k; f++ {
			st += tprs[f][i]
			sf += fprs[f][i]
		}
		res.TPR[i], res.FPR[i] = st/float64(k), sf/float64(k)
	}
	res.Accuracy, res.AccuracyStd = npMean(acc), npStd(acc)
	res.Threshold = npMean(best)
	res.VAL, res.VALStd, res.FAR = npMean(val), npStd(val), npMean(far)
	return res, nil
}

// interpSlinear18 is scipy ≤ 1.8's interp1d(x, y, kind='slinear')(f) for a
// non-decreasing x with x_0 ≤ f ≤ max x (the caller's guards), y_i = y(i):
// make_interp_spline(x, y, k=1) with knots t = (x_0, x_0, x_1, …, x_m−1,
// x_m−1) and coefficients y, evaluated as _bspl.evaluate_spline does it:
// find_interval's search from the first interval, then _deBoor_D's
// degree-1 step and the sum Σ c·B in that order, without fused
// multiply-adds (the float64(…) conversions keep Go from fusing).
func interpSlinear18(x []float64, y func(int) float64, f float64) float64 {
	m := len(x)
	// find_interval: l = k = 1, then l+1 while f ≥ t[l+1] and l+1 ≠ m; the
	// knot t[l] is x[l−1], so l is the segment (x[l−1], x[l]).
	j := 1
	for j != m-1 && f >= x[j] {
		j++
	}
	xa, xb := x[j-1], x[j]
	if xb == xa { // _deBoor_D: a zero-width span leaves both B-splines 0
		return 0
	}
	w := 1 / (xb - xa)
	b0 := float64(w * (xb - f))
	b1 := float64(w * (f - xa))
	out := float64(y(j-1) * b0)
	return out + float64(y(j)*b1)
}

// fold is the test range [lo, hi) of one KFold split.
type fold struct{ lo, hi int }

// kfold is sklearn's KFold(k, shuffle=False) on n samples: contiguous
// folds of ⌊n/k⌋, the first n mod k one longer.
func kfold(n, k int) []fold {
	folds := make([]fold, k)
	lo := 0
	for f := range folds {
		size := n / k
		if f < n%k {
			size++
		}
		folds[f] = fold{lo, lo + size}
		lo += size
	}
	return folds
}

// split holds one side of a fold: the sorted distances of its same and of
// its different pairs, so that "distance < t" counts are binary searches.
type split struct {
	same, diff []float64
}

// fill loads the train (train = true) or test side of fold fd; with all
// set (k = 1) both sides are every pair.
func (s *split) fill(dist []float64, same []bool, fd fold, all, train bool) {
	s.same, s.diff = s.same[:0], s.diff[:0]
	for i, v := range dist {
		in := i >= fd.lo && i < fd.hi
		if train && !all {
			in = !in
		}
		if !in {
			continue
		}
		if same[i] {
			s.same = append(s.same, v)
		} else {
			s.diff = append(s.diff, v)
		}
	}
	sort.Float64s(s.same)
	sort.Float64s(s.diff)
}

// below counts the values of the sorted v that are strictly below t.
func below(v []float64, t float64) int { return sort.SearchFloat64s(v, t) }

// accuracy is calculate_accuracy's acc: (TP + TN) / n.
func (s *split) accuracy(t float64) float64 {
	tp := below(s.same, t)
	tn := len(s.diff) - below(s.diff, t)
	return float64(tp+tn) / float64(len(s.same)+len(s.diff))
}

// rates is calculate_accuracy's tpr and fpr, 0 for an empty denominator.
func (s *split) rates(t float64) (tpr, fpr float64) {
	if len(s.same) > 0 {
		tpr = float64(below(s.same, t)) / float64(len(s.same))
	}
	if len(s.diff) > 0 {
		fpr = float64(below(s.diff, t)) / float64(len(s.diff))
	}
	return tpr, fpr
}

// valFAR is calculate_val_far: TP/n_same and FP/n_diff (both counts are
// nonzero: Verification checks every fold first).
func (s *split) valFAR(t float64) (val, far float64) {
	return float64(below(s.same, t)) / float64(len(s.same)), float64(below(s.diff, t)) / float64(len(s.diff))
}

// distances returns Σ(â − b̂)² per pair, as np.sum(np.square(â − b̂), 1)
// computes it from sklearn-normalised float64 rows.
func distances(a, b loss.Matrix) []float64 {
	d := a.Cols
	dist := make([]float64, a.Rows)
	ua, ub, sq := make([]float64, d), make([]float64, d), make([]float64, d)
	for i := range dist {
		unit(ua, a.Data[i*d:(i+1)*d], sq)
		unit(ub, b.Data[i*d:(i+1)*d], sq)
		for j := range sq {
			e := ua[j] - ub[j]
			sq[j] = e * e
		}
		dist[i] = pairwiseSum(sq)
	}
	return dist
}

// unit writes the float64 widening of row divided by its float64 L2 norm
// into dst; a zero row stays zero (sklearn replaces a zero norm by 1). sq is
// scratch of the row's length.
func unit(dst []float64, row []float32, sq []float64) {
	for j, v := range row {
		dst[j] = float64(v)
		sq[j] = dst[j] * dst[j]
	}
	norm := math.Sqrt(pairwiseSum(sq))
	if norm == 0 {
		return
	}
	for j := range dst {
		dst[j] /= norm
	}
}

// pairwiseSum is numpy's pairwise summation of float64 (the order of
// np.add.reduce over a contiguous axis): below 8 terms a plain loop, up to
// 128 eight interleaved partial sums combined as ((r0+r1)+(r2+r3)) +
// ((r4+r5)+(r6+r7)) plus the remainder in order, above that the two
// halves, split at a multiple of 8.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		res := 0.0
		for _, v := range a {
			res += v
		}
		return res
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range r {
				r[j] += a[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += a[i]
		}
		return res
	}
	n2 := n / 2
	n2 -= n2 % 8
	return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
}

// npMean is np.mean of a 1-D float64 array.
func npMean(a []float64) float64 { return pairwiseSum(a) / float64(len(a)) }

// npStd is np.std (ddof 0): the square root of the mean squared deviation
// from np.mean, each step in numpy's order.
func npStd(a []float64) float64 {
	m := npMean(a)
	dev := make([]float64, len(a))
	for i, v := range a {
		e := v - m
		dev[i] = e * e
	}
	return math.Sqrt(pairwiseSum(dev) / float64(len(a)))
}

// firstNonFinite returns the index of the first NaN or ±Inf in v, or −1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}
