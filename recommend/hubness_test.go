package recommend

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb"
)

func randomUnit(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return vectordb.Normalize(v)
}

// hubScores are the mean of the k highest dot products, for any k up to the seed count, with
// ties and seeds fewer than k+1.
func TestHubScoresAreTheMeanOfTheKNearest(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const dim = 16
	for _, seeds := range []int{1, 2, 7, 50} {
		var mat []float32
		for range seeds {
			mat = append(mat, randomUnit(r, dim)...)
		}
		mat = append(mat, mat[:dim]...) // a tie: the first seed twice
		n := seeds + 1
		z := randomUnit(r, dim)
		var ds []float64
		for i := range n {
			ds = append(ds, float64(dot(mat[i*dim:(i+1)*dim], z)))
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(ds)))
		for k := 1; k <= n; k++ {
			var want float64
			for _, d := range ds[:k] {
				want += d
			}
			want /= float64(k)
			if got := hubScores(mat, dim, [][]float32{z, z}, k); float64(got[1]) < want-1e-5 || float64(got[1]) > want+1e-5 || got[0] != got[1] {
				t.Errorf("seeds %d k %d: %v, want %v", n, k, got, want)
			}
		}
	}
}

// BenchmarkHubScores is the hub scores of one block of candidates against 10,000 mapped
// seeds of the shipped bundle's latent size (what a request pays per hubBlock candidates
// not yet scored).
func BenchmarkHubScores(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	const dim, seeds = 1536, 10000
	mat := make([]float32, 0, seeds*dim)
	for range seeds {
		mat = append(mat, randomUnit(r, dim)...)
	}
	zs := make([][]float32, hubBlock)
	for i := range zs {
		zs[i] = randomUnit(r, dim)
	}
	b.ResetTimer()
	for b.Loop() {
		hubScores(mat, dim, zs, 5)
	}
}
