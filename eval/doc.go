// Package eval scores embeddings the way face-recognition papers report
// them: pair verification by insightface's protocol (Verification) and
// closed-set identification against class centres (Top1).
//
// Verification reproduces evaluate() of insightface's
// recognition/eval/verification.py with pca = 0 (the numbers its training
// callbacks print as "Accuracy-Flip" and "VAL@FAR"), so that figures are
// comparable with published ones: the accuracy threshold is chosen on k−1
// folds and tested on the held-out one, never on the test pairs themselves.
// The goldens in testdata/golden_eval.json are computed by a verbatim copy
// of insightface's functions (testdata/eval_golden.py).
//
// Everything is computed in float64 from the float32 inputs, serially and
// in a fixed order, so results are bitwise the same for any GOMAXPROCS.
package eval
