package eval

import (
	"context"
	"math"
	"sort"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

func TestTopK(t *testing.T) {
	rel := map[string]bool{"a": true, "b": true}
	m := TopK([]string{"x", "a", "y", "b"}, rel, []int{1, 2, 10})
	want := map[string]float64{
		"hitrate@1": 0, "recall@1": 0, "ndcg@1": 0,
		"hitrate@2": 1, "recall@2": 0.5, "ndcg@2": (1 / math.Log2(3)) / (1 + 1/math.Log2(3)),
		"hitrate@10": 1, "recall@10": 1, "ndcg@10": (1/math.Log2(3) + 1/math.Log2(5)) / (1 + 1/math.Log2(3)),
	}
	for k, v := range want {
		if math.Abs(m[k]-v) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if m := TopK([]string{"a", "b"}, rel, []int{2}); m["ndcg@2"] != 1 || m["recall@2"] != 1 {
		t.Errorf("a perfect ranking: %v", m)
	}
}

func TestTasteProducers(t *testing.T) {
	packs := map[string][]string{"p": {"1", "2", "3", "4"}, "q": {"5", "6"}, "r": {"7"}}
	liked, held := TasteProducers(packs, 200, 1)
	if len(liked) != 200 {
		t.Fatalf("%d producers", len(liked))
	}
	for i := range liked {
		if len(liked[i]) == 0 || len(held[i]) == 0 {
			t.Fatalf("producer %d: liked %v, held %v", i, liked[i], held[i])
		}
		all := append(append([]string{}, liked[i]...), held[i]...)
		sort.Strings(all)
		for j := 1; j < len(all); j++ {
			if all[j] == all[j-1] {
				t.Fatalf("producer %d lists %s twice", i, all[j])
			}
		}
		for _, id := range all {
			if id == "7" {
				t.Fatalf("a one-loop pack was used")
			}
		}
	}
	again, _ := TasteProducers(packs, 200, 1)
	for i := range liked {
		if len(again[i]) != len(liked[i]) || again[i][0] != liked[i][0] {
			t.Fatal("the same seed draws other producers")
		}
	}
}

// oracle ranks a query's pack-mates first: every metric is 1 where relevance allows.
type oracle struct{ rows []vectordb.Row }

func (o oracle) rank(packs map[string]bool, exclude map[string]bool, k int) []string {
	var first, rest []string
	for _, r := range o.rows {
		switch {
		case exclude[r.ID]:
		case packs[r.Pack]:
			first = append(first, r.ID)
		default:
			rest = append(rest, r.ID)
		}
	}
	out := append(first, rest...)
	return out[:min(k, len(out))]
}

func (o oracle) Similar(_ context.Context, id string, k int) ([]string, error) {
	for _, r := range o.rows {
		if r.ID == id {
			return o.rank(map[string]bool{r.Pack: true}, map[string]bool{id: true}, k), nil
		}
	}
	return nil, nil
}

func (o oracle) Profile(_ context.Context, liked []string, k int) ([]string, error) {
	packs, ex := map[string]bool{}, map[string]bool{}
	for _, id := range liked {
		ex[id] = true
		for _, r := range o.rows {
			if r.ID == id {
				packs[r.Pack] = true
			}
		}
	}
	return o.rank(packs, ex, k), nil
}

func TestRunTasteOracleAndRandom(t *testing.T) {
	var rows []vectordb.Row
	for p := 0; p < 40; p++ {
		for i := 0; i < 3; i++ {
			rows = append(rows, vectordb.Row{ID: string(rune('A'+p%26)) + string(rune('a'+p/26)) + string(rune('0'+i)), Pack: string(rune('A'+p%26)) + string(rune('a'+p/26))})
		}
	}
	for _, task := range []string{"similar", "profile"} {
		rep, err := RunTaste(context.Background(), TasteConfig{Task: task, Loops: rows, Ranker: oracle{rows}, Producers: 300, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"hitrate@10", "recall@10", "ndcg@10", "ndcg@50"} {
			if rep.Metrics[k] != 1 {
				t.Errorf("%s oracle %s = %v, want 1", task, k, rep.Metrics[k])
			}
		}
		// Random: recall@50 is about 50 of ~118 candidates.
		if r := rep.Random["recall@50"]; r < 0.3 || r > 0.55 {
			t.Errorf("%s random recall@50 = %v, want about 0.42", task, r)
		}
	}
	if _, err := RunTaste(context.Background(), TasteConfig{Task: "nope", Loops: rows, Ranker: oracle{rows}}); err == nil {
		t.Error("an unknown task ran")
	}
}
