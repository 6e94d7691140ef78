package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Candidate settings, as train/loopmatch_train/metrics.py names them.
const (
	// SettingAll ranks every candidate.
	SettingAll = "all"
	// SettingSameBPM ranks only candidates of the seed's exact tempo.
	SettingSameBPM = "same_bpm"
	// SettingBPM3 ranks candidates within 3% of the seed's tempo.
	SettingBPM3 = "bpm3"
)

// Settings are the candidate settings in report order.
func Settings() []string { return []string{SettingAll, SettingSameBPM, SettingBPM3} }

// bpmSlack absorbs rounding at the edge of a tempo range, as metrics.py does.
const bpmSlack = 1e-9

// Admits reports whether a candidate of tempo candBPM is ranked for a seed of tempo
// seedBPM in the setting: metrics.py's candidate_mask.
func Admits(setting string, seedBPM, candBPM float64) bool {
	switch setting {
	case SettingAll:
		return true
	case SettingSameBPM:
		return candBPM == seedBPM
	case SettingBPM3:
		return math.Abs(candBPM-seedBPM) <= 0.03*seedBPM+bpmSlack
	}
	return false
}

// BPMRange is the inclusive tempo range a setting admits for a seed, as a store filter
// takes it: (0, 0) means unbounded. ok is false for an unknown setting, and for a tempo
// setting when the seed's tempo is unknown (<= 0), since "the seed's tempo" is then
// undefined: such seeds are not scored in that setting.
func BPMRange(setting string, seedBPM float64) (lo, hi float64, ok bool) {
	switch setting {
	case SettingAll:
		return 0, 0, true
	case SettingSameBPM:
		if seedBPM <= 0 {
			return 0, 0, false
		}
		return seedBPM, seedBPM, true
	case SettingBPM3:
		if seedBPM <= 0 {
			return 0, 0, false
		}
		d := 0.03*seedBPM + bpmSlack
		return seedBPM - d, seedBPM + d, true
	}
	return 0, 0, false
}

// Candidate is one ranked candidate of a seed.
type Candidate struct {
	ID    string
	Score float64
	// Relevant marks a right answer (the seed's pack, or a listed pair).
	Relevant bool
}

// Ranking is one seed's candidates in one setting: every candidate the setting admits,
// right answers included.
type Ranking struct {
	Seed       string
	Candidates []Candidate
}

// Options of Score. Zero values take the paper's defaults where noted.
type Options struct {
	// MinCandidates skips a seed with fewer wrong candidates than this (metrics.py uses 5
	// in the tempo settings and none for all); 0 skips none.
	MinCandidates int
	// Ks are the Recall@K cut-offs (default 1, 10); ILDs the list lengths of ILD@L
	// (default 5, 10).
	Ks, ILDs []int
}

func (o Options) withDefaults() Options {
	if len(o.Ks) == 0 {
		o.Ks = []int{1, 10}
	}
	if len(o.ILDs) == 0 {
		o.ILDs = []int{5, 10}
	}
	return o
}

// Metrics summarise one setting. Without scored pairs only Seeds and Pairs are set.
type Metrics struct {
	// Seeds scored and (seed, right answer) pairs ranked.
	Seeds, Pairs int
	// RMean and RMedian of the normalized ranks (R_mn, R_md); random is 0.5.
	RMean, RMedian float64
	// Recall[k]: the share of pairs whose right answer ranks in the top k.
	Recall map[int]float64
	// ILD[l]: inter-list diversity of the seeds' top-l lists (NaN for under two seeds).
	ILD map[int]float64
	// ks and ilds keep the caller's order for output.
	ks, ilds []int
}

// Score computes metrics.py's evaluate() over rankings: for every seed with a right
// answer, each right answer is ranked among itself and the seed's wrong candidates only
// (the other right answers are left out), ties counting half; Recall@K counts a hit when
// better + ties/2 < K; ILD@L compares the seeds' top-L lists over all their candidates,
// right answers included (best first; equal scores keep the given order).
func Score(rankings []Ranking, o Options) Metrics {
	o = o.withDefaults()
	m := Metrics{Recall: map[int]float64{}, ILD: map[int]float64{}, ks: o.Ks, ilds: o.ILDs}
	maxL := slices.Max(o.ILDs)
	var ranks []float64
	hits := make(map[int]int, len(o.Ks))
	var lists [][]string
	for _, r := range rankings {
		var targets, wrong []float64
		for _, c := range r.Candidates {
			if c.Relevant {
				targets = append(targets, c.Score)
			} else {
				wrong = append(wrong, c.Score)
			}
		}
		if len(targets) == 0 || len(wrong) < o.MinCandidates {
			continue
		}
		m.Seeds++
		for _, t := range targets {
			better, ties := rankOf64(t, wrong)
			ranks = append(ranks, NormalizedRank(better, ties, len(wrong)+1))
			for _, k := range o.Ks {
				if float64(better)+0.5*float64(ties) < float64(k) {
					hits[k]++
				}
			}
		}
		lists = append(lists, topIDs(r.Candidates, maxL))
	}
	m.Pairs = len(ranks)
	if m.Pairs == 0 {
		return m
	}
	m.RMean, m.RMedian = Mean(ranks), Median(ranks)
	for _, k := range o.Ks {
		m.Recall[k] = float64(hits[k]) / float64(m.Pairs)
	}
	for _, l := range o.ILDs {
		m.ILD[l] = ILD(lists, l)
	}
	return m
}

// rankOf64 is RankOf over float64 scores (the store's float32 scores widened exactly).
func rankOf64(target float64, others []float64) (better, ties int) {
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

// topIDs returns the ids of the n best candidates, best first; equal scores keep their
// order (a stable sort, as metrics.py's argsort(kind="stable")).
func topIDs(cs []Candidate, n int) []string {
	s := slices.Clone(cs)
	slices.SortStableFunc(s, func(a, b Candidate) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	if len(s) > n {
		s = s[:n]
	}
	ids := make([]string, len(s))
	for i, c := range s {
		ids[i] = c.ID
	}
	return ids
}

// MarshalJSON writes metrics.py's keys: seeds, pairs, R_mn, R_md, Recall@K, ILD@L (the
// values only when pairs were scored; NaN as null).
func (m Metrics) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"seeds":%d,"pairs":%d`, m.Seeds, m.Pairs)
	if m.Pairs > 0 {
		num := func(key string, v float64) {
			b.WriteString(`,"` + key + `":`)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				b.WriteString("null")
				return
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		num("R_mn", m.RMean)
		num("R_md", m.RMedian)
		for _, k := range m.keysRecall() {
			num(fmt.Sprintf("Recall@%d", k), m.Recall[k])
		}
		for _, l := range m.keysILD() {
			num(fmt.Sprintf("ILD@%d", l), m.ILD[l])
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads what MarshalJSON (or metrics.py) writes.
func (m *Metrics) UnmarshalJSON(data []byte) error {
	var raw map[string]*float64
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = Metrics{Recall: map[int]float64{}, ILD: map[int]float64{}}
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	for k, p := range raw {
		var n int
		switch {
		case k == "seeds":
			m.Seeds = int(val(p))
		case k == "pairs":
			m.Pairs = int(val(p))
		case k == "R_mn":
			m.RMean = val(p)
		case k == "R_md":
			m.RMedian = val(p)
		case scan(k, "Recall@%d", &n):
			m.Recall[n] = val(p)
			m.ks = append(m.ks, n)
		case scan(k, "ILD@%d", &n):
			m.ILD[n] = val(p)
			m.ilds = append(m.ilds, n)
		}
	}
	slices.Sort(m.ks)
	slices.Sort(m.ilds)
	return nil
}

func scan(s, format string, n *int) bool {
	_, err := fmt.Sscanf(s, format, n)
	return err == nil && fmt.Sprintf(format, *n) == s
}

func (m Metrics) keysRecall() []int {
	if m.ks != nil {
		return m.ks
	}
	return sortedKeys(m.Recall)
}

func (m Metrics) keysILD() []int {
	if m.ilds != nil {
		return m.ilds
	}
	return sortedKeys(m.ILD)
}

func sortedKeys(mp map[int]float64) []int {
	ks := make([]int, 0, len(mp))
	for k := range mp {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Values lists the metrics by their metrics.py names, in report order: R_mn, R_md,
// Recall@K..., ILD@L... (empty when no pair was scored).
func (m Metrics) Values() []NamedValue {
	if m.Pairs == 0 {
		return nil
	}
	out := []NamedValue{{"R_mn", m.RMean}, {"R_md", m.RMedian}}
	for _, k := range m.keysRecall() {
		out = append(out, NamedValue{fmt.Sprintf("Recall@%d", k), m.Recall[k]})
	}
	for _, l := range m.keysILD() {
		out = append(out, NamedValue{fmt.Sprintf("ILD@%d", l), m.ILD[l]})
	}
	return out
}

// NamedValue is one metric and its value.
type NamedValue struct {
	Name  string
	Value float64
}
