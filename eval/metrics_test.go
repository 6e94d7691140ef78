package eval

import (
	"math"
	"testing"
)

func TestNormalizedRank(t *testing.T) {
	cases := []struct {
		better, ties, n int
		want            float64
	}{
		{0, 0, 5, 0},      // best of five
		{4, 0, 5, 1},      // worst of five
		{2, 0, 5, 0.5},    // middle
		{0, 4, 5, 0.5},    // all tied: as random
		{1, 2, 5, 0.5},    // one above, two tied: (1+1)/4
		{0, 0, 1, 0},      // alone
		{3, 0, 101, 0.03}, // hand-checked: 3/100
	}
	for _, c := range cases {
		if got := NormalizedRank(c.better, c.ties, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("NormalizedRank(%d,%d,%d) = %v, want %v", c.better, c.ties, c.n, got, c.want)
		}
	}
}

func TestRankOf(t *testing.T) {
	b, ti := RankOf(0.5, []float32{0.9, 0.5, 0.1, float32(math.NaN()), 0.7})
	if b != 2 || ti != 1 {
		t.Errorf("RankOf = %d better, %d ties; want 2, 1", b, ti)
	}
}

func TestMeanMedian(t *testing.T) {
	if got := Mean([]float64{0.1, 0.2, 0.6}); math.Abs(got-0.3) > 1e-12 {
		t.Errorf("Mean = %v", got)
	}
	if got := Median([]float64{0.9, 0.1, 0.2}); got != 0.2 {
		t.Errorf("Median odd = %v", got)
	}
	if got := Median([]float64{0.4, 0.1, 0.2, 0.9}); math.Abs(got-0.3) > 1e-12 {
		t.Errorf("Median even = %v", got)
	}
	if !math.IsNaN(Mean(nil)) || !math.IsNaN(Median(nil)) {
		t.Error("empty: want NaN")
	}
}

func TestILD(t *testing.T) {
	lists := [][]string{
		{"a", "b", "c", "d"},
		{"a", "b", "x", "y"}, // shares 2 of 4 with the first
		{"p", "q", "r", "s"}, // shares none
	}
	// pairs: (0,1) 1-2/4 = .5; (0,2) 1; (1,2) 1 -> mean 2.5/3
	if got, want := ILD(lists, 4), 2.5/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("ILD@4 = %v, want %v", got, want)
	}
	// cut to L=2: (0,1) share a,b -> 0; others 1 -> 2/3
	if got, want := ILD(lists, 2), 2.0/3; math.Abs(got-want) > 1e-12 {
		t.Errorf("ILD@2 = %v, want %v", got, want)
	}
	same := [][]string{{"a", "b"}, {"b", "a"}}
	if got := ILD(same, 2); got != 0 {
		t.Errorf("identical lists: ILD = %v, want 0", got)
	}
}
