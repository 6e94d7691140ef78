package embedded

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/loopmatch/loopmatch/vectordb"
)

const crashDim = 64

// rowFor derives a row's whole content from its id, so a reader can check any stored
// row without knowing what the killed writer managed to commit.
func rowFor(id string, gen int) vectordb.Row {
	seed, _ := strconv.ParseUint(id[1:], 10, 64)
	r := rand.New(rand.NewPCG(seed, uint64(gen)))
	v := make([]float32, crashDim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return vectordb.Row{ID: id, Pack: fmt.Sprintf("gen%d", gen), BPM: float64(gen), BundleID: "crash@1", Embedding: v}
}

// TestCrashChild is the writer the crash test kills; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv("LOOPMATCH_CRASH_DIR")
	if dir == "" {
		t.Skip("helper process for TestKill9DuringUpserts")
	}
	round, _ := strconv.Atoi(os.Getenv("LOOPMATCH_CRASH_ROUND"))
	ctx := context.Background()
	s, err := Open(ctx, dir, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "loops", Dim: crashDim, BundleID: "crash@1"}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(round), 1))
	for batch := 0; ; batch++ {
		rows := make([]vectordb.Row, 50)
		for i := range rows {
			// New ids and rewrites of old ones, each rewrite a new generation of content.
			rows[i] = rowFor(fmt.Sprintf("r%d", r.IntN(20000)), round)
		}
		if err := s.Upsert(ctx, "loops", rows); err != nil {
			t.Fatal(err)
		}
		if batch%7 == 0 {
			s.Delete(ctx, "loops", []string{fmt.Sprintf("r%d", r.IntN(20000))})
		}
	}
}

// TestKill9DuringUpserts kills a writing process 20 times at random moments; after each
// kill the store must open (every row passes its checksum) and every row must be whole.
func TestKill9DuringUpserts(t *testing.T) {
	if testing.Short() {
		t.Skip("kills 20 child processes")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(42, 42))
	total := 0
	for round := 1; round <= 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LOOPMATCH_CRASH_DIR="+dir, "LOOPMATCH_CRASH_ROUND="+strconv.Itoa(round))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+r.IntN(600)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()

		s, err := Open(context.Background(), dir, Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		n, _ := s.Count(context.Background(), "loops")
		for after := ""; ; {
			page, err := s.List(context.Background(), "loops", after, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			ids := make([]string, len(page))
			for i, p := range page {
				ids[i] = p.ID
			}
			full, err := s.Get(context.Background(), "loops", ids)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			for _, got := range full {
				want := rowFor(got.ID, int(got.BPM))
				if got.Pack != want.Pack || len(got.Embedding) != crashDim {
					t.Fatalf("round %d: row %s torn: %+v", round, got.ID, got)
				}
				for i := range want.Embedding {
					if got.Embedding[i] != want.Embedding[i] {
						t.Fatalf("round %d: row %s embedding differs at %d", round, got.ID, i)
					}
				}
			}
			after = page[len(page)-1].ID
		}
		s.Close()
		total = n
		t.Logf("round %d: killed, reopened, %d rows verified", round, n)
	}
	if total == 0 {
		t.Fatal("the writer never committed anything: the test proved nothing")
	}
}
