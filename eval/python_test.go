package eval

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// python finds the interpreter of the project's light environment (numpy), as
// scripts/test.sh sets LOOPMATCH_PYTHON.
func python(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LOOPMATCH_PYTHON"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../.venv/bin/python")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Skip("no Python: set LOOPMATCH_PYTHON (scripts/bootstrap.sh makes .venv)")
	return ""
}

// pyEvaluate runs train/loopmatch_train/metrics.py's evaluate() on a score matrix.
const pyEvaluate = `
import json, sys
sys.path.insert(0, sys.argv[1])
from loopmatch_train.metrics import evaluate
d = json.load(open(sys.argv[2]))
out = {s: evaluate(d["scores"], d["seed_pack"], d["seed_bpm"], d["cand_pack"], d["cand_bpm"], s) for s in ("all", "same_bpm", "bpm3")}
print(json.dumps(out).replace("NaN", "null"))
`

// TestScoreAgreesWithPython: Score, fed what Run feeds it, gives metrics.py's numbers
// exactly, on random instances with many ties (scores rounded to one decimal), seeds
// without right answers, and tempo settings that skip seeds.
func TestScoreAgreesWithPython(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "eval.py")
	os.WriteFile(script, []byte(pyEvaluate), 0o644)
	for trial, round := range []bool{true, false, true} {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		nS, nC := 30+rng.IntN(20), 40+rng.IntN(30)
		tempos := []float64{120, 122, 124, 126, 128, 130, 174}
		type inst struct {
			Scores   [][]float64 `json:"scores"`
			SeedPack []string    `json:"seed_pack"`
			SeedBPM  []float64   `json:"seed_bpm"`
			CandPack []string    `json:"cand_pack"`
			CandBPM  []float64   `json:"cand_bpm"`
		}
		var d inst
		packBPM := map[string]float64{}
		// Seeds come from 15 packs, candidates from 12: some seeds have no right answer.
		pack := func(n int) string {
			p := fmt.Sprintf("P%d", rng.IntN(n))
			if _, ok := packBPM[p]; !ok {
				packBPM[p] = tempos[rng.IntN(len(tempos))]
			}
			return p
		}
		for i := 0; i < nS; i++ {
			p := pack(15)
			d.SeedPack, d.SeedBPM = append(d.SeedPack, p), append(d.SeedBPM, packBPM[p])
		}
		for i := 0; i < nC; i++ {
			p := pack(12)
			d.CandPack, d.CandBPM = append(d.CandPack, p), append(d.CandBPM, packBPM[p])
		}
		for i := 0; i < nS; i++ {
			row := make([]float64, nC)
			for j := range row {
				row[j] = rng.Float64()*2 - 1
				if round {
					row[j] = math.Round(row[j]*10) / 10
				}
			}
			d.Scores = append(d.Scores, row)
		}
		in := filepath.Join(dir, fmt.Sprintf("in%d.json", trial))
		b, _ := json.Marshal(d)
		os.WriteFile(in, b, 0o644)
		out, err := exec.Command(py, script, "../train", in).Output()
		if err != nil {
			t.Fatalf("python: %v", err)
		}
		var want map[string]Metrics
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatalf("python output %s: %v", out, err)
		}
		for _, setting := range Settings() {
			var rs []Ranking
			for s := 0; s < nS; s++ {
				r := Ranking{Seed: fmt.Sprint(s)}
				for c := 0; c < nC; c++ {
					if Admits(setting, d.SeedBPM[s], d.CandBPM[c]) {
						r.Candidates = append(r.Candidates, Candidate{ID: fmt.Sprint(c), Score: d.Scores[s][c], Relevant: d.SeedPack[s] == d.CandPack[c]})
					}
				}
				rs = append(rs, r)
			}
			o := Options{}
			if setting != SettingAll {
				o.MinCandidates = 5
			}
			got, w := Score(rs, o), want[setting]
			if got.Seeds != w.Seeds || got.Pairs != w.Pairs {
				t.Errorf("trial %d %s: seeds/pairs %d/%d, python %d/%d", trial, setting, got.Seeds, got.Pairs, w.Seeds, w.Pairs)
			}
			gv, wv := got.Values(), w.Values()
			if len(gv) != len(wv) || len(gv) == 0 {
				t.Fatalf("trial %d %s: values %v, python %v", trial, setting, gv, wv)
			}
			for i := range gv {
				if gv[i].Name != wv[i].Name || math.Abs(gv[i].Value-wv[i].Value) > 1e-12 {
					t.Errorf("trial %d %s: %s = %v, python %s = %v", trial, setting, gv[i].Name, gv[i].Value, wv[i].Name, wv[i].Value)
				}
			}
			t.Logf("trial %d %s: %d seeds, %d pairs, R_mn %.4f", trial, setting, got.Seeds, got.Pairs, got.RMean)
		}
	}
}
