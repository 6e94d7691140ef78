package eval

import (
	"math"
	"sort"
)

// NormalizedRank is the position of the target among n candidates (the target included),
// scaled to [0, 1]: 0 when no other candidate scores higher, 1 when all do. Ties with the
// target count half, so a scorer that cannot tell candidates apart lands at 0.5, as
// random ranking does. better is the number of other candidates scoring strictly higher,
// ties the number scoring exactly the same.
func NormalizedRank(better, ties, n int) float64 {
	if n <= 1 {
		return 0
	}
	return (float64(better) + 0.5*float64(ties)) / float64(n-1)
}

// RankOf counts, for a target score, how many of the other scores are strictly higher
// and how many are equal. NaN scores count as lower than anything.
func RankOf(target float32, others []float32) (better, ties int) {
	for _, s := range others {
		switch {
		case s > target:
			better++
		case s == target:
			ties++
		}
	}
	return better, ties
}

// Mean of xs; NaN for none.
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Median of xs (the mean of the middle two for an even count); NaN for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ILD is the inter-list diversity of top-L lists: the mean over all pairs of lists of
// 1 - |A ∩ B| / L. Lists longer than L are cut to L; 1 means no two seeds share a
// recommendation, 0 that every seed gets the same list.
func ILD(lists [][]string, l int) float64 {
	if len(lists) < 2 || l <= 0 {
		return math.NaN()
	}
	sets := make([]map[string]struct{}, len(lists))
	for i, li := range lists {
		if len(li) > l {
			li = li[:l]
		}
		sets[i] = make(map[string]struct{}, len(li))
		for _, id := range li {
			sets[i][id] = struct{}{}
		}
	}
	var sum float64
	var pairs int
	for i := range sets {
		for j := i + 1; j < len(sets); j++ {
			common := 0
			for id := range sets[i] {
				if _, ok := sets[j][id]; ok {
					common++
				}
			}
			sum += 1 - float64(common)/float64(l)
			pairs++
		}
	}
	return sum / float64(pairs)
}
