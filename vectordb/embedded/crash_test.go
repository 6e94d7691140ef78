package embedded

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loopmatch/loopmatch/vectordb"
)

const crashDim = 64

// crashReady is the line the writer prints after its first committed batch.
const crashReady = "crash-child: writing"

// rowFor derives a row's whole content from its id, so a reader can check any stored
// row without knowing what the killed writer managed to commit.
func rowFor(id string, gen int) vectordb.Row {
	seed, _ := strconv.ParseUint(id[1:], 10, 64)
	r := rand.New(rand.NewPCG(seed, uint64(gen)))
	v := make([]float32, crashDim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return vectordb.Row{ID: id, Pack: fmt.Sprintf("gen%d", gen), BPM: float64(gen), EncoderID: "crash@1", Embedding: v}
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
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: "loops", Dim: crashDim, EncoderID: "crash@1"}); err != nil {
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
		if batch == 0 {
			// Tell the parent that writing has begun, so its kill lands among upserts
			// and not during start-up.
			fmt.Fprintln(os.Stdout, crashReady)
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
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == crashReady {
					ready <- true
				}
			}
			close(ready)
		}()
		select {
		case ok := <-ready:
			if !ok {
				cmd.Wait()
				t.Fatalf("round %d: the writer exited before writing", round)
			}
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: the writer did not start writing within 60 s", round)
		}
		time.Sleep(time.Duration(r.IntN(500)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no deferred code, no Close, possibly mid-commit
		cmd.Wait()

		s, err := Open(context.Background(), dir, Options{LockTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		n, _ := s.Count(context.Background(), "loops")
		thisRound := 0
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
				if int(got.BPM) == round {
					thisRound++
				}
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
		if raw := verifyFile(t, dir); raw != n {
			t.Fatalf("round %d: the file holds %d rows, the index %d", round, raw, n)
		}
		total = n
		t.Logf("round %d: killed, reopened, %d rows verified (%d written in this round)", round, n, thisRound)
		if thisRound == 0 {
			t.Errorf("round %d: the writer signalled a committed batch, but none of its rows are in the store", round)
		}
	}
	if total == 0 {
		t.Fatal("the writer never committed anything: the test proved nothing")
	}
}

// verifyFile checks the closed store file below the Store API: bbolt's own consistency
// check of pages and freelist, then every stored row against its CRC-32. It returns the
// number of rows.
func verifyFile(t *testing.T, dir string) int {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, fileName), 0o644, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("open the store file read-only: %v", err)
	}
	defer db.Close()
	n := 0
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("bbolt consistency check: %w", err)
		}
		b := tx.Bucket([]byte(rowsPrefix + "loops"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if _, err := decodeRow(v, crashDim); err != nil {
				return fmt.Errorf("row %q: %w", k, err)
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
