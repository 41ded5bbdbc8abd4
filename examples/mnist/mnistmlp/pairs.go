package mnistmlp

import "math/rand/v2"

// VerifySeed fixes the verification pairs of VerificationPairs: the same
// pairs for every run and -seed.
const VerifySeed = 20150320

// VerificationPairs splits the test images into disjoint pairs (no image in
// two pairs), as many same-digit pairs as different-digit ones, about n/4
// of each, interleaved (same, different, same, …) so that every fold of
// the protocol holds both kinds. The split depends on the labels and
// VerifySeed alone: a fixed permutation orders the images; walking it, an
// image pairs with the waiting image of its digit until the same pairs are
// done; the images left pair, in order, with the latest unpaired image of
// another digit.
func VerificationPairs(labels []int32) (ia, ib []int, same []bool) {
	n := len(labels)
	half := n / 4
	perm := rand.New(rand.NewPCG(VerifySeed, 1)).Perm(n)
	var waiting [NumClass]int
	for c := range waiting {
		waiting[c] = -1
	}
	var sa, sb, rest []int
	for _, i := range perm {
		c := labels[i]
		switch {
		case len(sa) == half:
			rest = append(rest, i)
		case waiting[c] >= 0:
			sa, sb = append(sa, waiting[c]), append(sb, i)
			waiting[c] = -1
		default:
			waiting[c] = i
		}
	}
	for _, i := range waiting {
		if i >= 0 {
			rest = append(rest, i)
		}
	}
	var da, db, open []int
	for _, i := range rest {
		if len(da) == len(sa) {
			break
		}
		k := len(open) - 1
		for k >= 0 && labels[open[k]] == labels[i] {
			k--
		}
		if k < 0 {
			open = append(open, i)
			continue
		}
		da, db = append(da, open[k]), append(db, i)
		open = append(open[:k], open[k+1:]...)
	}
	m := min(len(sa), len(da))
	for k := 0; k < m; k++ {
		ia, ib, same = append(ia, sa[k], da[k]), append(ib, sb[k], db[k]), append(same, true, false)
	}
	return ia, ib, same
}
