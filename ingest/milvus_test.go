package ingest

import (
	"context"
	"os"
	"testing"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// TestIngestIntoMilvus runs the same library through a real Milvus: every good file
// stored, every broken one reported, a re-run adds nothing.
func TestIngestIntoMilvus(t *testing.T) {
	addr := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if addr == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not")
		}
		t.Skip("no Milvus: scripts/test.sh starts one and sets LOOPMATCH_MILVUS_ADDR")
	}
	requireSox(t)
	ctx := context.Background()
	store, err := milvus.Open(ctx, addr, milvus.Options{Consistency: "strong"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	drop := func() {
		for _, inst := range []string{"drum", "bass"} {
			store.DropCollection(ctx, loopid.Collection(inst))
			store.DropCollection(ctx, loopid.WindowsCollection(loopid.Collection(inst)))
		}
	}
	drop() // a clean slate on a shared test server
	defer drop()
	lib := t.TempDir()
	good := makeLibrary(t, lib, 60, 4)
	broken, skipped := addBroken(t, lib)
	cfg := config(t, rt, store)
	rep, err := Run(ctx, cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.Summary())
	if rep.Ingested != len(good) || rep.Failed != len(broken) || rep.Skipped != len(skipped) {
		t.Fatalf("ingested %d/%d, failed %d/%d, skipped %d/%d", rep.Ingested, len(good), rep.Failed, len(broken), rep.Skipped, len(skipped))
	}
	snap := snapshot(t, store)
	if countLoops(snap) != len(good) || len(snap) == len(good) {
		t.Fatalf("Milvus holds %d loops and %d further windows, want %d loops and their windows", countLoops(snap), len(snap)-countLoops(snap), len(good))
	}
	rep2, err := Run(ctx, cfg, []string{lib})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.Ingested != 0 || rep2.AlreadyPresent != len(good) {
		t.Errorf("re-run: ingested %d, present %d", rep2.Ingested, rep2.AlreadyPresent)
	}
}
