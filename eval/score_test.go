package eval

import (
	"encoding/json"
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 || (math.IsNaN(a) && math.IsNaN(b)) }

// handRankings: three seeds over candidates x, y, z, u, v, worked out by hand below.
func handRankings() []Ranking {
	c := func(id string, s float64, rel bool) Candidate { return Candidate{ID: id, Score: s, Relevant: rel} }
	return []Ranking{
		// A: right answers x, y; wrong z .8, u .5, v .1.
		// x: 0 better -> 0/3 = 0. y (.5): 1 better (z), 1 tie (u) -> 1.5/3 = .5.
		// top-2: x, z.
		{Seed: "A", Candidates: []Candidate{c("x", .9, true), c("y", .5, true), c("z", .8, false), c("u", .5, false), c("v", .1, false)}},
		// B: right answer z (.2); wrong x .4, y .05, u .3, v .1 -> 2 better -> 2/4 = .5.
		// top-2: x, u.
		{Seed: "B", Candidates: []Candidate{c("x", .4, false), c("y", .05, false), c("z", .2, true), c("u", .3, false), c("v", .1, false)}},
		// C: no right answer among its candidates: skipped (its top-2 v, u would
		// change ILD if it were not).
		{Seed: "C", Candidates: []Candidate{c("x", .1, false), c("y", .2, false), c("z", .3, false), c("u", .8, false), c("v", .9, false)}},
	}
}

func TestScoreByHand(t *testing.T) {
	m := Score(handRankings(), Options{Ks: []int{1, 2}, ILDs: []int{1, 2}})
	// ranks 0, .5, .5
	checks := []struct {
		name      string
		got, want float64
	}{
		{"seeds", float64(m.Seeds), 2},
		{"pairs", float64(m.Pairs), 3},
		{"R_mn", m.RMean, 1.0 / 3},
		{"R_md", m.RMedian, 0.5},
		// Recall@1: only A.x (0 < 1); A.y has 1 + .5 = 1.5, B.z has 2.
		{"Recall@1", m.Recall[1], 1.0 / 3},
		// Recall@2: A.x, A.y (1.5 < 2); B.z (2 < 2) misses.
		{"Recall@2", m.Recall[2], 2.0 / 3},
		// top-1 lists [x], [x] -> 0; top-2 [x z], [x u] share x -> 1 - 1/2.
		{"ILD@1", m.ILD[1], 0},
		{"ILD@2", m.ILD[2], 0.5},
	}
	for _, c := range checks {
		if !near(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestScoreSkipsSeedsWithFewCandidates(t *testing.T) {
	// A has 3 wrong candidates, B 4: with a minimum of 4 only B is scored.
	m := Score(handRankings(), Options{MinCandidates: 4, Ks: []int{1, 3}, ILDs: []int{2}})
	if m.Seeds != 1 || m.Pairs != 1 || !near(m.RMean, 0.5) || !near(m.RMedian, 0.5) {
		t.Errorf("got seeds %d pairs %d R_mn %v R_md %v; want 1, 1, .5, .5", m.Seeds, m.Pairs, m.RMean, m.RMedian)
	}
	// B.z: 2 better: misses @1, hits @3.
	if m.Recall[1] != 0 || m.Recall[3] != 1 {
		t.Errorf("Recall = %v", m.Recall)
	}
	if !math.IsNaN(m.ILD[2]) {
		t.Errorf("ILD over one list = %v, want NaN", m.ILD[2])
	}
	// Nobody passes a minimum of 5: no values at all.
	m = Score(handRankings(), Options{MinCandidates: 5})
	if m.Seeds != 0 || m.Pairs != 0 || m.Values() != nil {
		t.Errorf("all skipped: %+v", m)
	}
	b, _ := json.Marshal(m)
	if string(b) != `{"seeds":0,"pairs":0}` {
		t.Errorf("json = %s", b)
	}
}

func TestScoreTies(t *testing.T) {
	c := func(id string, s float64, rel bool) Candidate { return Candidate{ID: id, Score: s, Relevant: rel} }
	// Everything tied: rank .5, as random; Recall@1 counts 0 + 4/2 = 2 < 1: no hit;
	// Recall@3: 2 < 3: hit.
	all := []Ranking{{Seed: "s", Candidates: []Candidate{c("a", 1, false), c("t", 1, true), c("b", 1, false), c("d", 1, false), c("e", 1, false)}}}
	m := Score(all, Options{Ks: []int{1, 3}, ILDs: []int{2}})
	if !near(m.RMean, 0.5) || m.Recall[1] != 0 || m.Recall[3] != 1 {
		t.Errorf("all tied: R_mn %v Recall %v", m.RMean, m.Recall)
	}
	// A right answer tied with one wrong candidate on top: 0 + .5 < 1, a hit at 1.
	top := []Ranking{{Seed: "s", Candidates: []Candidate{c("a", 2, false), c("t", 2, true), c("b", 1, false)}}}
	if m := Score(top, Options{Ks: []int{1}}); !near(m.RMean, 0.25) || m.Recall[1] != 1 {
		t.Errorf("tied on top: R_mn %v Recall@1 %v, want .25 and 1", m.RMean, m.Recall[1])
	}
	// Other right answers never count against one another.
	rights := []Ranking{{Seed: "s", Candidates: []Candidate{c("t1", 3, true), c("t2", 2, true), c("t3", 1, true), c("w", 0, false)}}}
	if m := Score(rights, Options{}); m.Pairs != 3 || m.RMean != 0 {
		t.Errorf("right answers among themselves: pairs %d R_mn %v, want 3, 0", m.Pairs, m.RMean)
	}
	// Top lists keep the given order among equal scores (a stable sort).
	if got := topIDs([]Candidate{c("b", 1, false), c("a", 1, false), c("c", 2, false)}, 2); got[0] != "c" || got[1] != "b" {
		t.Errorf("topIDs = %v, want [c b]", got)
	}
}

func TestScoreAloneAndEmpty(t *testing.T) {
	// A seed whose only candidate is its right answer ranks it 0 (metrics.py's max(len, 1)).
	m := Score([]Ranking{{Seed: "s", Candidates: []Candidate{{ID: "t", Score: 0.1, Relevant: true}}}}, Options{})
	if m.Pairs != 1 || m.RMean != 0 || m.Recall[1] != 1 {
		t.Errorf("alone: %+v", m)
	}
	if m := Score(nil, Options{}); m.Seeds != 0 || m.Pairs != 0 {
		t.Errorf("empty: %+v", m)
	}
}

func TestAdmitsAndBPMRange(t *testing.T) {
	cases := []struct {
		setting string
		seed, c float64
		want    bool
	}{
		{SettingAll, 120, 60, true},
		{SettingSameBPM, 120, 120, true},
		{SettingSameBPM, 120, 120.5, false},
		{SettingBPM3, 100, 97, true},
		{SettingBPM3, 100, 103, true},
		{SettingBPM3, 100, 96.99, false},
		{SettingBPM3, 100, 103.01, false},
		{SettingBPM3, 130, 126.1, true}, // 130 * .97, inexact in binary: the slack keeps it
		{"fast", 120, 120, false},
	}
	for _, c := range cases {
		if got := Admits(c.setting, c.seed, c.c); got != c.want {
			t.Errorf("Admits(%s, %v, %v) = %v", c.setting, c.seed, c.c, got)
		}
	}
	// The store filter's range admits exactly what Admits does.
	for _, setting := range []string{SettingSameBPM, SettingBPM3} {
		for _, seed := range []float64{85, 100, 124, 126, 128, 130, 134, 174} {
			lo, hi, ok := BPMRange(setting, seed)
			if !ok {
				t.Fatalf("%s %v: not ok", setting, seed)
			}
			for c := 80.0; c <= 180; c += 0.25 {
				if in := c >= lo && c <= hi; in != Admits(setting, seed, c) {
					t.Errorf("%s seed %v cand %v: range [%v, %v] says %v", setting, seed, c, lo, hi, in)
				}
			}
		}
	}
	if _, _, ok := BPMRange(SettingSameBPM, 0); ok {
		t.Error("same_bpm for an unknown tempo: want not ok")
	}
	if lo, hi, ok := BPMRange(SettingAll, 0); !ok || lo != 0 || hi != 0 {
		t.Error("all: want unbounded")
	}
	if _, _, ok := BPMRange("x", 120); ok {
		t.Error("unknown setting: want not ok")
	}
}

func TestMetricsJSONRoundTrip(t *testing.T) {
	m := Score(handRankings(), Options{})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var back Metrics
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Seeds != m.Seeds || back.Pairs != m.Pairs || !near(back.RMean, m.RMean) || !near(back.Recall[10], m.Recall[10]) || !near(back.ILD[5], m.ILD[5]) {
		t.Errorf("round trip: %s -> %+v", b, back)
	}
	got, want := back.Values(), m.Values()
	if len(got) != 6 || len(got) != len(want) {
		t.Fatalf("Values: %v vs %v", got, want)
	}
	for i := range got {
		if got[i].Name != want[i].Name || !near(got[i].Value, want[i].Value) {
			t.Errorf("Values[%d]: %v vs %v", i, got[i], want[i])
		}
	}
	// metrics.py's key names, and null for NaN.
	one := Score(handRankings()[1:2], Options{})
	b, _ = json.Marshal(one)
	if string(b) != `{"seeds":1,"pairs":1,"R_mn":0.5,"R_md":0.5,"Recall@1":0,"Recall@10":1,"ILD@5":null,"ILD@10":null}` {
		t.Errorf("json = %s", b)
	}
}
