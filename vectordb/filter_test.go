package vectordb

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// Matcher must answer as MatchRow does, for short lists (MatchRow itself) and long ones
// (the sets).
func TestMatcherAgreesWithMatchRow(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, r.IntN(40))
		}
		return out
	}
	rows := make([]Row, 400)
	for i := range rows {
		rows[i] = Row{ID: fmt.Sprintf("id%d", r.IntN(40)), Pack: fmt.Sprintf("p%d", r.IntN(40)),
			Key: []string{"", "Am", "C", "F#m"}[r.IntN(4)], BPM: []float64{0, 90, 120, 174}[r.IntN(4)]}
		rows[i].Anomalous = r.IntN(2) == 0
	}
	for trial := 0; trial < 200; trial++ {
		f := Filter{ExcludeIDs: ids("id", r.IntN(30)), ExcludePacks: ids("p", r.IntN(12)), Anomalous: AnomalyFilter(r.IntN(3))}
		if r.IntN(2) == 0 {
			f.Packs = ids("p", r.IntN(20)+1)
		}
		if r.IntN(2) == 0 {
			f.MinBPM, f.MaxBPM = 100, 180
		}
		if r.IntN(3) == 0 {
			f.Keys = []string{"Am"}
		}
		m := f.Matcher()
		for i := range rows {
			if got, want := m(&rows[i]), f.MatchRow(&rows[i]); got != want {
				t.Fatalf("trial %d: Matcher %v, MatchRow %v for %+v under %+v", trial, got, want, rows[i], f)
			}
		}
	}
}
