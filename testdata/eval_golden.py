#!/usr/bin/python3
"""Golden cases for github.com/marginloss/marginloss/eval.Verification.

Run from the repository root with Debian's interpreter (numpy, scipy and
sklearn from Debian):

    /usr/bin/python3 testdata/eval_golden.py [--out FILE]

It writes testdata/golden_eval.json (or FILE). The reference is a verbatim
copy of insightface's recognition/eval/verification.py functions (LFold,
calculate_roc, calculate_accuracy, calculate_val, calculate_val_far,
evaluate; MIT licence, kept below), run on embeddings normalised with
sklearn.preprocessing.normalize as insightface's test() does.

scipy >= 1.9 raises "Expect x to not have duplicates" inside calculate_val
for every FAR curve with repeated values (insightface issues #2152, #2290).
The copy therefore runs with `interpolate.interp1d` bound to
interp1d_scipy18 below, which is interp1d(x, y, kind='slinear') as scipy
1.8.1 executed it: a stable mergesort of x, make_interp_spline(x, y, k=1)'s
k = 1 shortcut (knots np.r_[x[0], x, x[-1]], coefficients y, no check for
repeated x: the check came in 1.9), evaluation by BSpline (the same Cython
evaluate_spline and C _deBoor_D in 1.8.1 and in Debian's scipy; only the
NaN constant's name changed), then interp1d's bounds check. Every call is
also checked against an independent pure-Python transcription of
find_interval and _deBoor_D (interp1d_scipy18_python), and, where x has no
repeats, against this scipy's own interp1d.

Each case also records what the one modified function, calculate_roc_best
(calculate_roc returning the folds' best thresholds too), gives; its other
outputs are asserted identical to the verbatim calculate_roc. Each case is
also recomputed from rows normalised by np.linalg.norm (numpy's pairwise
sum, the order the Go code uses) and must give the same numbers, so the
goldens do not hinge on the last bit of a norm. Cases where insightface
raises are recorded with the exception's type under "errors".

Embeddings are integers times 2^-8 (exact in float32, short in JSON); the
integer grid makes tied distances and distances exactly on a threshold
common, which the cases want.
"""

import argparse
import json
import math
import os
import sys

import numpy as np
import scipy
import scipy.interpolate
import sklearn
import sklearn.preprocessing
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold

HERE = os.path.dirname(os.path.abspath(__file__))
SCALE = 2.0 ** -8


# ---------------------------------------------------------------------------
# scipy 1.8.1's interp1d(x, y, kind='slinear').

def interp1d_scipy18(x, y, kind='linear'):
    assert kind == 'slinear'
    x = np.array(x, copy=True)
    y = np.array(y, copy=True)
    ind = np.argsort(x, kind="mergesort")  # interp1d.__init__, assume_sorted=False
    x = x[ind]
    y = np.take(y, ind, axis=-1)
    y = y.astype(np.float64)
    # make_interp_spline(x, y, k=1), scipy 1.8.1: the k == 1 special case
    # returns before any check of x.
    t = np.r_[x[0], x, x[-1]]
    c = np.ascontiguousarray(np.asarray(y), dtype=np.float64)
    spline = scipy.interpolate.BSpline.construct_fast(t, c, 1, axis=0)

    def f(x_new):
        x_new = np.asarray(x_new, dtype=np.float64)
        y_new = spline(x_new)  # interp1d._call_spline
        # interp1d._check_bounds (bounds_error defaults to True)
        if (x_new < x[0]).any():
            raise ValueError("A value in x_new is below the interpolation range.")
        if (x_new > x[-1]).any():
            raise ValueError("A value in x_new is above the interpolation range.")
        ref = interp1d_scipy18_python(x, y, float(x_new))
        assert float(y_new) == ref or (math.isnan(ref) and math.isnan(float(y_new))), (float(y_new), ref)
        if np.all(x[1:] > x[:-1]):
            mod = scipy.interpolate.interp1d(x, y, kind='slinear')(x_new)
            assert float(mod) == float(y_new), (float(mod), float(y_new))
        return y_new

    return f


def interp1d_scipy18_python(x, y, xval):
    """find_interval + _deBoor_D (k = 1, nu = 0) + the sum of
    _bspl.evaluate_spline, scipy 1.8.1, transcribed line by line."""
    t = [x[0]] + list(x) + [x[-1]]
    k = 1
    n = len(t) - k - 1
    l = k  # prev_l = k on the first point
    while xval < t[l] and l != k:
        l -= 1
    l += 1
    while xval >= t[l] and l != n:
        l += 1
    ell = l - 1
    h = [1.0, 0.0]
    hh = [h[0]]
    h[0] = 0.0
    xb = t[ell + 1]
    xa = t[ell]
    if xb == xa:
        h[1] = 0.0
    else:
        w = hh[0] / (xb - xa)
        h[0] += w * (xb - xval)
        h[1] = w * (xval - xa)
    out = 0.0
    for a in range(k + 1):
        out = out + float(y[ell + a - k]) * h[a]
    return out


class _Interpolate:
    interp1d = staticmethod(interp1d_scipy18)


interpolate = _Interpolate()


# ---------------------------------------------------------------------------
# Verbatim from deepinsight/insightface recognition/eval/verification.py
# (the golden cases all run with pca = 0).
#
# MIT License
#
# Copyright (c) 2016 David Sandberg
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.

class LFold:
  def __init__(self, n_splits = 2, shuffle = False):
    self.n_splits = n_splits
    if self.n_splits>1:
      self.k_fold = KFold(n_splits = n_splits, shuffle = shuffle)

  def split(self, indices):
    if self.n_splits>1:
      return self.k_fold.split(indices)
    else:
      return [(indices, indices)]


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10, pca = 0):
    assert(embeddings1.shape[0] == embeddings2.shape[0])
    assert(embeddings1.shape[1] == embeddings2.shape[1])
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    nrof_thresholds = len(thresholds)
    k_fold = LFold(n_splits=nrof_folds, shuffle=False)
    
    tprs = np.zeros((nrof_folds,nrof_thresholds))
    fprs = np.zeros((nrof_folds,nrof_thresholds))
    accuracy = np.zeros((nrof_folds))
    indices = np.arange(nrof_pairs)
    #print('pca', pca)
    
    if pca==0:
      diff = np.subtract(embeddings1, embeddings2)
      dist = np.sum(np.square(diff),1)
    
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        #print('train_set', train_set)
        #print('test_set', test_set)
        if pca>0:
          print('doing pca on', fold_idx)
          embed1_train = embeddings1[train_set]
          embed2_train = embeddings2[train_set]
          _embed_train = np.concatenate( (embed1_train, embed2_train), axis=0 )
          #print(_embed_train.shape)
          pca_model = PCA(n_components=pca)
          pca_model.fit(_embed_train)
          embed1 = pca_model.transform(embeddings1)
          embed2 = pca_model.transform(embeddings2)
          embed1 = sklearn.preprocessing.normalize(embed1)
          embed2 = sklearn.preprocessing.normalize(embed2)
          #print(embed1.shape, embed2.shape)
          diff = np.subtract(embed1, embed2)
          dist = np.sum(np.square(diff),1)
        
        # Find the best threshold for the fold
        acc_train = np.zeros((nrof_thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            _, _, acc_train[threshold_idx] = calculate_accuracy(threshold, dist[train_set], actual_issame[train_set])
        best_threshold_index = np.argmax(acc_train)
        #print('threshold', thresholds[best_threshold_index])
        for threshold_idx, threshold in enumerate(thresholds):
            tprs[fold_idx,threshold_idx], fprs[fold_idx,threshold_idx], _ = calculate_accuracy(threshold, dist[test_set], actual_issame[test_set])
        _, _, accuracy[fold_idx] = calculate_accuracy(thresholds[best_threshold_index], dist[test_set], actual_issame[test_set])
          
    tpr = np.mean(tprs,0)
    fpr = np.mean(fprs,0)
    return tpr, fpr, accuracy

def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    fp = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    fn = np.sum(np.logical_and(np.logical_not(predict_issame), actual_issame))
  
    tpr = 0 if (tp+fn==0) else float(tp) / float(tp+fn)
    fpr = 0 if (fp+tn==0) else float(fp) / float(fp+tn)
    acc = float(tp+tn)/dist.size
    return tpr, fpr, acc


  
def calculate_val(thresholds, embeddings1, embeddings2, actual_issame, far_target, nrof_folds=10):
    assert(embeddings1.shape[0] == embeddings2.shape[0])
    assert(embeddings1.shape[1] == embeddings2.shape[1])
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    nrof_thresholds = len(thresholds)
    k_fold = LFold(n_splits=nrof_folds, shuffle=False)
    
    val = np.zeros(nrof_folds)
    far = np.zeros(nrof_folds)
    
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff),1)
    indices = np.arange(nrof_pairs)
    
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
      
        # Find the threshold that gives FAR = far_target
        far_train = np.zeros(nrof_thresholds)
        for threshold_idx, threshold in enumerate(thresholds):
            _, far_train[threshold_idx] = calculate_val_far(threshold, dist[train_set], actual_issame[train_set])
        if np.max(far_train)>=far_target:
            f = interpolate.interp1d(far_train, thresholds, kind='slinear')
            threshold = f(far_target)
        else:
            threshold = 0.0
    
        val[fold_idx], far[fold_idx] = calculate_val_far(threshold, dist[test_set], actual_issame[test_set])
  
    val_mean = np.mean(val)
    far_mean = np.mean(far)
    val_std = np.std(val)
    return val_mean, val_std, far_mean


def calculate_val_far(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    true_accept = np.sum(np.logical_and(predict_issame, actual_issame))
    false_accept = np.sum(np.logical_and(predict_issame, np.logical_not(actual_issame)))
    n_same = np.sum(actual_issame)
    n_diff = np.sum(np.logical_not(actual_issame))
    #print(true_accept, false_accept)
    #print(n_same, n_diff)
    val = float(true_accept) / float(n_same)
    far = float(false_accept) / float(n_diff)
    return val, far

def evaluate(embeddings, actual_issame, nrof_folds=10, pca = 0):
    # Calculate evaluation metrics
    thresholds = np.arange(0, 4, 0.01)
    embeddings1 = embeddings[0::2]
    embeddings2 = embeddings[1::2]
    tpr, fpr, accuracy = calculate_roc(thresholds, embeddings1, embeddings2,
        np.asarray(actual_issame), nrof_folds=nrof_folds, pca = pca)
    thresholds = np.arange(0, 4, 0.001)
    val, val_std, far = calculate_val(thresholds, embeddings1, embeddings2,
        np.asarray(actual_issame), 1e-3, nrof_folds=nrof_folds)
    return tpr, fpr, accuracy, val, val_std, far

# End of the verbatim copy.
# ---------------------------------------------------------------------------


def calculate_roc_best(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10):
    """calculate_roc (pca = 0) that also returns the folds' best thresholds."""
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    nrof_thresholds = len(thresholds)
    k_fold = LFold(n_splits=nrof_folds, shuffle=False)
    tprs = np.zeros((nrof_folds, nrof_thresholds))
    fprs = np.zeros((nrof_folds, nrof_thresholds))
    accuracy = np.zeros((nrof_folds))
    best = np.zeros((nrof_folds))
    indices = np.arange(nrof_pairs)
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff), 1)
    for fold_idx, (train_set, test_set) in enumerate(k_fold.split(indices)):
        acc_train = np.zeros((nrof_thresholds))
        for threshold_idx, threshold in enumerate(thresholds):
            _, _, acc_train[threshold_idx] = calculate_accuracy(threshold, dist[train_set], actual_issame[train_set])
        best_threshold_index = np.argmax(acc_train)
        best[fold_idx] = thresholds[best_threshold_index]
        for threshold_idx, threshold in enumerate(thresholds):
            tprs[fold_idx, threshold_idx], fprs[fold_idx, threshold_idx], _ = calculate_accuracy(threshold, dist[test_set], actual_issame[test_set])
        _, _, accuracy[fold_idx] = calculate_accuracy(thresholds[best_threshold_index], dist[test_set], actual_issame[test_set])
    return np.mean(tprs, 0), np.mean(fprs, 0), accuracy, best


def reference(a, b, same, folds, far_target, normalize):
    """Everything Verification returns, from insightface's functions."""
    n, d = a.shape
    emb = np.empty((2 * n, d), dtype=np.float64)
    emb[0::2] = a
    emb[1::2] = b
    emb = normalize(emb)
    issame = list(bool(s) for s in same)
    if far_target == 1e-3:
        tpr, fpr, accuracy, val, val_std, far = evaluate(emb, issame, nrof_folds=folds)
    else:  # evaluate() with its hard-coded 1e-3 replaced by far_target
        thresholds = np.arange(0, 4, 0.01)
        e1, e2 = emb[0::2], emb[1::2]
        tpr, fpr, accuracy = calculate_roc(thresholds, e1, e2, np.asarray(issame), nrof_folds=folds, pca=0)
        thresholds = np.arange(0, 4, 0.001)
        val, val_std, far = calculate_val(thresholds, e1, e2, np.asarray(issame), far_target, nrof_folds=folds)
    tpr2, fpr2, acc2, best = calculate_roc_best(np.arange(0, 4, 0.01), emb[0::2], emb[1::2], np.asarray(issame), folds)
    assert np.array_equal(tpr, tpr2) and np.array_equal(fpr, fpr2) and np.array_equal(accuracy, acc2)
    return {
        "accuracy": float(np.mean(accuracy)),
        "accuracy_std": float(np.std(accuracy)),
        "fold_accuracy": [float(v) for v in accuracy],
        "threshold": float(np.mean(best)),
        "fold_threshold": [float(v) for v in best],
        "val": float(val),
        "val_std": float(val_std),
        "far": float(far),
        "tpr": [float(v) for v in tpr],
        "fpr": [float(v) for v in fpr],
    }


def sk_normalize(x):
    return sklearn.preprocessing.normalize(x)


def np_normalize(x):
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[norm == 0] = 1
    return x / norm


def grid(x):
    """Rounds to the 2^-8 grid, clipped to a 16-bit range, as int arrays."""
    return np.clip(np.rint(np.asarray(x) / SCALE), -32767, 32767).astype(np.int64)


def folds_have_both(same, k):
    """Whether every KFold(k) test fold and its train set hold a same and a
    different pair (else insightface's calculate_val divides by zero)."""
    n = len(same)
    if k == 1:
        return same.any() and (~same).any()
    sizes = [n // k + (1 if f < n % k else 0) for f in range(k)]
    lo = 0
    for size in sizes:
        test = np.zeros(n, dtype=bool)
        test[lo:lo + size] = True
        lo += size
        for part in (same[test], same[~test]):
            if not (part.any() and (~part).any()):
                return False
    return True


def make_pairs(rng, n, d, same_frac, noise, n_ids=None, folds=(10,)):
    """n pairs of d-dim embeddings: a same pair is one identity's centre plus
    noise on both sides, a different pair two identities' centres. The
    labels are redrawn until every fold of each k in folds has both kinds."""
    n_ids = n_ids or max(4, n // 4)
    centres = rng.standard_normal((n_ids, d)) * 8
    while True:
        same = rng.random(n) < same_frac
        if all(folds_have_both(same, k) for k in folds):
            break
    ia = rng.integers(0, n_ids, n)
    ib = np.where(same, ia, (ia + rng.integers(1, n_ids, n)) % n_ids)
    a = centres[ia] + rng.standard_normal((n, d)) * noise
    b = centres[ib] + rng.standard_normal((n, d)) * noise
    return grid(a), grid(b), same


def case(name, ai, bi, same, folds, far_target, note):
    ai, bi = np.asarray(ai, dtype=np.int64), np.asarray(bi, dtype=np.int64)
    a = ai.astype(np.float32).astype(np.float64) * SCALE
    b = bi.astype(np.float32).astype(np.float64) * SCALE
    same = np.asarray(same, dtype=bool)
    ref = reference(a, b, same, folds, far_target, sk_normalize)
    alt = reference(a, b, same, folds, far_target, np_normalize)
    for key in ref:
        if not np.allclose(ref[key], alt[key], rtol=1e-12, atol=1e-15):
            sys.exit(f"{name}: {key} depends on the normalisation's rounding: {ref[key]} vs {alt[key]}")
    c = {
        "name": name,
        "note": note,
        "folds": folds,
        "far_target": far_target,
        "rows": int(ai.shape[0]),
        "cols": int(ai.shape[1]),
        "a": [int(v) for v in ai.ravel()],
        "b": [int(v) for v in bi.ravel()],
        "same": [bool(s) for s in same],
    }
    c.update(ref)
    return c


def error_case(name, ai, bi, same, folds, far_target, note):
    ai, bi = np.asarray(ai, dtype=np.int64), np.asarray(bi, dtype=np.int64)
    a = ai.astype(np.float64) * SCALE
    b = bi.astype(np.float64) * SCALE
    try:
        reference(a, b, np.asarray(same, dtype=bool), folds, far_target, sk_normalize)
    except (ValueError, ZeroDivisionError, IndexError) as e:
        raised = type(e).__name__ + ": " + str(e)
    else:
        sys.exit(f"{name}: insightface did not raise")
    return {
        "name": name,
        "note": note,
        "folds": folds,
        "far_target": far_target,
        "rows": int(ai.shape[0]),
        "cols": int(ai.shape[1]),
        "a": [int(v) for v in ai.ravel()],
        "b": [int(v) for v in bi.ravel()],
        "same": [bool(s) for s in same],
        "raises": raised,
    }


def unit_angle(theta, r=256.0):
    """A 2-D vector at angle theta, length about r/256, on the grid."""
    return [int(round(r * math.cos(theta))), int(round(r * math.sin(theta)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(HERE, "golden_eval.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(20240519)
    cases, errors = [], []

    a, b, s = make_pairs(rng, 3000, 4, 0.5, 2.0)
    cases.append(case("random_3000x4", a, b, s, 10, 1e-3,
                      "10 folds of 300, FAR 1e-3: train folds have ~1350 different pairs, so the FAR curve has fine steps"))
    a, b, s = make_pairs(rng, 800, 16, 0.5, 5.0)
    cases.append(case("random_800x16", a, b, s, 10, 1e-3, "higher dimension (pairwise sums over 16), overlapping classes"))
    a, b, s = make_pairs(rng, 160, 130, 0.4, 6.0)
    cases.append(case("random_160x130", a, b, s, 10, 1e-3, "d > 128: numpy's pairwise sum splits in halves"))
    a, b, s = make_pairs(rng, 53, 5, 0.5, 3.0, folds=(7,))
    cases.append(case("odd_folds_53_7", a, b, s, 7, 1e-3, "53 = 7·7 + 4: the first four folds hold 8 pairs"))
    a, b, s = make_pairs(rng, 101, 3, 0.5, 4.0)
    cases.append(case("odd_folds_101_10_far05", a, b, s, 10, 0.05, "101 pairs, 10 folds, FAR 0.05"))
    a, b, s = make_pairs(rng, 400, 2, 0.5, 3.0, n_ids=6, folds=(10, 2, 1, 13))
    cases.append(case("random_400x2_far01", a, b, s, 10, 0.1, "FAR 0.1, 2-D"))
    cases.append(case("random_400x2_far_above", a, b, s, 10, 2.0, "FAR target above every train FAR: threshold 0, VAL = FAR = 0"))
    cases.append(case("random_400x2_k2", a, b, s, 2, 1e-3, "two folds"))
    cases.append(case("random_400x2_k1", a, b, s, 1, 1e-3, "one fold: train = test = all"))
    cases.append(case("random_400x2_k13", a, b, s, 13, 0.02, "13 folds (pairwise means over >= 8 folds), FAR 0.02"))

    # Few pairs: 6 pairs, 2 folds, each fold with both kinds.
    a = [[256, 0], [0, 256], [256, 10], [200, 200], [-256, 5], [10, 256]]
    b = [[250, 20], [256, 0], [256, -30], [-200, 200], [0, -256], [20, 250]]
    s = [True, False, True, False, False, True]
    cases.append(case("few_6_k2", a, b, s, 2, 1e-3, "6 pairs, 2 folds of 3"))
    cases.append(case("few_6_k3", a, b, s, 3, 0.5, "6 pairs, 3 folds of 2, FAR 0.5"))
    cases.append(case("few_4_k1", a[:4], b[:4], s[:4], 1, 0.5, "4 pairs, one fold, FAR 0.5 = a plateau value (1 of 2)"))

    # Ties and distances exactly on thresholds: axis-aligned vectors give
    # distances of exactly 0 (same direction), 2 (orthogonal) and 4
    # (opposite), and 2.0 = 200·0.01 and 2000·0.001 are thresholds.
    a, b, s = [], [], []
    for i in range(120):
        kind = i % 6
        x = [int(50 + 7 * i), 0]
        if kind in (0, 1):  # same direction, same identity: dist 0
            a.append(x); b.append([int(3 + i), 0]); s.append(True)
        elif kind == 2:  # orthogonal same pair: dist exactly 2
            a.append(x); b.append([0, int(9 + i)]); s.append(True)
        elif kind == 3:  # orthogonal different pair: dist exactly 2
            a.append(x); b.append([0, -int(5 + i)]); s.append(False)
        elif kind == 4:  # opposite: dist exactly 4 (above every threshold)
            a.append(x); b.append([-int(11 + i), 0]); s.append(False)
        else:  # different pair at 45 degrees: dist 2 - sqrt 2
            a.append(x); b.append([int(20 + i), int(20 + i)]); s.append(False)
    cases.append(case("ties_exact_thresholds", a, b, s, 10, 1e-3, "distances 0, 2 (on a threshold: < is strict), 2-√2 and 4, many tied"))
    cases.append(case("ties_exact_thresholds_far_plateau", a, b, s, 10, 0.25,
                      "FAR target 0.25 sits inside a FAR plateau of some train folds"))
    cases.append(case("ties_exact_thresholds_k1_far_third", a, b, s, 1, 1.0 / 3.0,
                      "one fold: FAR 1/3 equals the plateau of the 45° pairs (t = 0.586 … 2.000): its last threshold"))
    cases.append(case("ties_exact_thresholds_k1_far_half", a, b, s, 1, 0.5,
                      "one fold: FAR 0.5 lies between the plateaus 1/3 and 2/3: interpolated between 2.000 and 2.001"))
    cases.append(case("ties_exact_thresholds_k1_far_top", a, b, s, 1, 2.0 / 3.0,
                      "one fold: FAR 2/3 = max FAR (opposite pairs are never accepted), a flat top: the interpolation gives 0"))
    cases.append(case("ties_exact_thresholds_k1_far_above", a, b, s, 1, 0.75,
                      "one fold: FAR 0.75 above max FAR 2/3: threshold 0"))

    # A non-flat top: the only different pairs beyond 3.998 sit in
    # [3.998, 3.999) (accepted only at the last VAL threshold) or at 4.
    a, b, s = [], [], []
    for i in range(40):
        kind = i % 4
        if kind == 0:
            a.append([256, 0]); b.append([250 + i, 3]); s.append(True)
        elif kind == 1:
            a.append([256, 0]); b.append([0, 256]); s.append(False)  # dist 2
        elif kind == 2:
            a.append([256, 0]); b.append([-256, 0]); s.append(False)  # dist 4
        else:
            a.append([2560, 0]); b.append([-2560, 101]); s.append(False)  # dist ≈ 3.99844
    cases.append(case("top_step_k1", a, b, s, 1, 2.0 / 3.0,
                      "one fold: max FAR 2/3 reached only at the last VAL threshold: the last segment interpolates (non-flat end)"))
    cases.append(case("top_step_k1_far_third", a, b, s, 1, 1.0 / 3.0,
                      "one fold: FAR target 1/3 = the plateau from t = 2.001 to 3.998: its last threshold"))
    cases.append(case("top_step_k1_far_tiny", a, b, s, 1, 1e-12,
                      "one fold: FAR target between the zero plateau and the first step"))

    # Zero embeddings (sklearn keeps them zero: distance 1 to a unit vector, 0 to another zero).
    a, b, s = make_pairs(rng, 60, 3, 0.5, 3.0)
    a[5] = 0
    b[5] = 0
    a[17] = 0
    b[40] = 0
    cases.append(case("zero_rows", a, b, s, 10, 1e-3, "zero rows: distance 0 or 1"))

    # One dimension: distances are 0 or 4 only.
    a, b, s = make_pairs(rng, 50, 1, 0.5, 1.0, folds=(5,))
    cases.append(case("one_dim", a, b, s, 5, 0.1, "d = 1: distances 0 or 4"))

    # Where insightface raises.
    a, b, s = make_pairs(rng, 20, 2, 0.5, 1.0, folds=(10, 5))
    s_nosame = s.copy()
    s_nosame[:2] = False
    errors.append(error_case("test_fold_without_same", a, b, s_nosame, 10, 1e-3, "fold 0 (pairs 0, 1) has no same pair"))
    s_nodiff = s.copy()
    s_nodiff[:4] = True
    errors.append(error_case("test_fold_without_diff", a, b, s_nodiff, 5, 1e-3, "fold 0 (pairs 0…3) has no different pair"))
    s_allsame = np.ones(20, dtype=bool)
    s_allsame[0] = False
    errors.append(error_case("train_fold_without_diff", a, b, s_allsame, 10, 1e-3,
                             "the only different pair is in fold 0, so its train set has none"))
    errors.append(error_case("more_folds_than_pairs", a[:5], b[:5], s[:5], 10, 1e-3, "10 folds for 5 pairs (KFold)"))
    errors.append(error_case("far_below_zero", a, b, np.array([True, False] * 10), 2, -0.1, "FAR target below the curve's range"))
    errors.append(error_case("no_pairs", np.zeros((0, 2)), np.zeros((0, 2)), [], 1, 1e-3, "no pairs at all (sklearn's normalize refuses them first; calculate_accuracy would divide by zero)"))

    doc = {
        "generator": "testdata/eval_golden.py",
        "scale": SCALE,
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "sklearn": sklearn.__version__},
        "cases": cases,
        "errors": errors,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(cases)} cases, {len(errors)} error cases")


if __name__ == "__main__":
    main()
