package milvus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/vectordbtest"
)

// addr is the test server: scripts/test.sh starts one and sets LOOPMATCH_MILVUS_ADDR.
func addr(t testing.TB) string {
	a := os.Getenv("LOOPMATCH_MILVUS_ADDR")
	if a == "" {
		if os.Getenv("LOOPMATCH_REQUIRE_MILVUS") != "" {
			t.Fatal("LOOPMATCH_REQUIRE_MILVUS is set but LOOPMATCH_MILVUS_ADDR is not: start Milvus with scripts/milvus.sh start DIR")
		}
		t.Skip("no Milvus: run scripts/milvus.sh start DIR and set LOOPMATCH_MILVUS_ADDR=127.0.0.1:19530 (scripts/test.sh does both)")
	}
	return a
}

func open(t testing.TB) *Store {
	s, err := Open(context.Background(), addr(t), Options{Consistency: "strong"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	s := open(t)
	defer s.Close()
	vectordbtest.Run(t, func(t *testing.T) vectordb.Store { return s })
	// Drop what the suite made, so repeated runs do not pile up collections.
	cs, _ := s.c.ListCollections(context.Background())
	for _, c := range cs {
		if strings.HasPrefix(c.Name, "conf_") {
			s.DropCollection(context.Background(), c.Name)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, "127.0.0.1:1", Options{DialTimeout: 1e9})
	if !errors.Is(err, vectordb.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable server: %v", err)
	}
}

func TestExprEscaping(t *testing.T) {
	f := vectordb.Filter{MinBPM: 120, MaxBPM: 128.5, Keys: []string{"Am"}, Packs: []string{`a"b`, `c\d`},
		ExcludePacks: []string{"x\ny"}, ExcludeIDs: []string{`" || id != "`}}
	want := `(bpm > 0 && bpm >= 120 && bpm <= 128.5) && (key != "" && key in ["Am"]) && pack in ["a\"b", "c\\d"] && pack not in ["x\ny"] && id not in ["\" || id != \""]`
	if got := Expr(f); got != want {
		t.Errorf("Expr =\n%s\nwant\n%s", got, want)
	}
	tests := []struct {
		f    vectordb.Filter
		want string
	}{
		{vectordb.Filter{BPMRanges: []vectordb.BPMRange{{Min: 114, Max: 126}, {Min: 57, Max: 63}}, UnknownBPM: vectordb.UnknownIncluded},
			`(bpm <= 0 || (bpm > 0 && ((bpm >= 114 && bpm <= 126) || (bpm >= 57 && bpm <= 63))))`},
		{vectordb.Filter{MaxBPM: 100, Keys: []string{"C"}, UnknownBPM: vectordb.UnknownOnly, UnknownKey: vectordb.UnknownIncluded},
			`bpm <= 0 && (key == "" || (key != "" && key in ["C"]))`},
		{vectordb.Filter{UnknownKey: vectordb.UnknownOnly}, `key == ""`},
		{vectordb.Filter{UnknownBPM: vectordb.UnknownIncluded, UnknownKey: vectordb.UnknownIncluded}, ``},
		{vectordb.Filter{Anomalous: vectordb.OnlyAnomalous, MinBPM: 90}, `anomalous == true && (bpm > 0 && bpm >= 90)`},
		{vectordb.Filter{Anomalous: vectordb.NotAnomalous}, `anomalous == false`},
		{vectordb.Filter{Kinds: []string{"snare", `x"`}, MinBPM: 90}, `kind in ["snare", "x\""] && (bpm > 0 && bpm >= 90)`},
	}
	for _, tc := range tests {
		if got := Expr(tc.f); got != tc.want {
			t.Errorf("Expr(%+v) =\n%s\nwant\n%s", tc.f, got, tc.want)
		}
	}
	if Expr(vectordb.Filter{}) != "" {
		t.Error("empty filter should give an empty expression")
	}
	// a collection made before the health fields: nothing is flagged
	if got := expr(vectordb.Filter{Anomalous: vectordb.OnlyAnomalous}, info{}); got != `id == ""` {
		t.Errorf("legacy anomalous only: %s", got)
	}
	if got := expr(vectordb.Filter{Anomalous: vectordb.NotAnomalous}, info{}); got != "" {
		t.Errorf("legacy not anomalous: %s", got)
	}
	// a collection made before the kind fields: no row has a kind
	if got := expr(vectordb.Filter{Kinds: []string{"snare"}}, info{health: true}); got != `id == ""` {
		t.Errorf("legacy kinds: %s", got)
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{`"`, `\`, "\n", `\"`, "ünï", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := Quote(s)
		// The literal must not end early: every quote inside is escaped.
		body := q[1 : len(q)-1]
		for i := 0; i < len(body); i++ {
			if body[i] == '\\' {
				i++
				continue
			}
			if body[i] == '"' || body[i] == '\n' {
				t.Fatalf("unescaped %q in %s", body[i], q)
			}
		}
	})
}

func TestTransient(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, "connection reset"), true},
		{fmt.Errorf("search: %w", status.Error(codes.DeadlineExceeded, "slow")), true},
		{status.Error(codes.ResourceExhausted, "rate limited"), true},
		{errors.New("dial tcp 127.0.0.1:19530: connect: connection refused"), true},
		{errors.New("collection not loaded: service not ready"), true},
		{status.Error(codes.InvalidArgument, "bad expression"), false},
		{errors.New("collection not found"), false},
	}
	for _, tc := range tests {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestRetryGivesUp: a server that keeps failing transiently ends in ErrUnavailable after
// the configured retries, and a permanent error is not retried.
func TestRetryGivesUp(t *testing.T) {
	s := &Store{addr: "test:1", o: Options{Retries: 2}}
	calls := 0
	err := s.retry(context.Background(), "probe", func() error {
		calls++
		return status.Error(codes.Unavailable, "down")
	})
	if !errors.Is(err, vectordb.ErrUnavailable) || calls != 3 {
		t.Errorf("transient: %d calls, %v", calls, err)
	}
	calls = 0
	err = s.retry(context.Background(), "probe", func() error {
		calls++
		return status.Error(codes.InvalidArgument, "no")
	})
	if errors.Is(err, vectordb.ErrUnavailable) || calls != 1 {
		t.Errorf("permanent: %d calls, %v", calls, err)
	}
}

// TestReplaceFinishesAfterCrash: Milvus swaps by parking the old collection, so a crash
// can leave the new one and the parked old one without the name; calling
// ReplaceCollection again puts the new one in place and drops the old.
func TestReplaceFinishesAfterCrash(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	dst := fmt.Sprintf("replace_%d", time.Now().UnixNano())
	src, parked := dst+"__new", dst+vectordb.ParkedSuffix
	defer func() {
		for _, c := range []string{dst, src, parked} {
			s.DropCollection(ctx, c)
		}
	}()
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: dst, Dim: vectordbtest.Dim, EncoderID: "old@1:aaa"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Upsert(ctx, dst, vectordbtest.Rows(1, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: src, Dim: 2 * vectordbtest.Dim, EncoderID: "new@2:bbb"}); err != nil {
		t.Fatal(err)
	}
	rows := vectordbtest.Rows(2, 3)
	for i := range rows {
		rows[i].Embedding = append(rows[i].Embedding, rows[i].Embedding...)
	}
	if err := s.Upsert(ctx, src, rows); err != nil {
		t.Fatal(err)
	}
	// The crash: the old collection parked, the new one not yet renamed.
	if err := s.c.RenameCollection(ctx, dst, parked); err != nil {
		t.Fatal(err)
	}
	s.forget(dst, parked)
	if err := s.ReplaceCollection(ctx, src, dst); err != nil {
		t.Fatalf("ReplaceCollection after the crash: %v", err)
	}
	cs, err := s.Collections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cs {
		switch c.Name {
		case dst:
			found = true
			if c.Dim != 2*vectordbtest.Dim || c.EncoderID != "new@2:bbb" || c.Count != 3 {
				t.Errorf("%s after the finished swap: %+v", dst, c)
			}
		case src, parked:
			t.Errorf("%s still there after the finished swap", c.Name)
		}
	}
	if !found {
		t.Errorf("%s missing after the finished swap", dst)
	}
	hits, err := s.Search(ctx, dst, rows[1].Embedding, 3, vectordb.Filter{})
	if err != nil || len(hits) != 3 || hits[0].ID != rows[1].ID {
		t.Errorf("search after the finished swap: %v, %v", hits, err)
	}
}

// TestLegacySchema: a collection created before the provenance fields (the first
// schema, made here with the SDK) still opens, reads and accepts writes; its rows
// read back with empty provenance, and writes drop it rather than fail.
func TestLegacySchema(t *testing.T) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	name := fmt.Sprintf("conf_legacy_%d", time.Now().UnixNano()%1e9)
	defer s.DropCollection(ctx, name)
	vs := func(n string, l int64) *entity.Field {
		return entity.NewField().WithName(n).WithDataType(entity.FieldTypeVarChar).WithMaxLength(l)
	}
	schema := entity.NewSchema().WithName(name).WithDescription(descPrefix + `{"bundle_id":"test@1:abc"}`).
		WithField(vs(fID, 512).WithIsPrimaryKey(true)).
		WithField(vs(fInstrument, 64)).WithField(vs(fPack, 1024)).WithField(vs(fPath, 4096)).
		WithField(vs(fKey, 64)).WithField(vs(fBundle, 256)).
		WithField(entity.NewField().WithName(fBPM).WithDataType(entity.FieldTypeDouble)).
		WithField(entity.NewField().WithName(fDuration).WithDataType(entity.FieldTypeDouble)).
		WithField(entity.NewField().WithName(fRate).WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName(fIngested).WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName(fVec).WithDataType(entity.FieldTypeFloatVector).WithDim(vectordbtest.Dim))
	if err := s.c.CreateCollection(ctx, schema, 1, client.WithConsistencyLevel(entity.ClStrong)); err != nil {
		t.Fatal(err)
	}
	idx, _ := entity.NewIndexHNSW(entity.COSINE, 16, 200)
	if err := s.c.CreateIndex(ctx, name, fVec, idx, false); err != nil {
		t.Fatal(err)
	}
	rows := vectordbtest.Rows(3, 6)
	// A row as the old code wrote it: the base columns only.
	if _, err := s.c.Insert(ctx, name, "", columns(info{dim: vectordbtest.Dim}, rows[:3])...); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureCollection(ctx, vectordb.Collection{Name: name, Dim: vectordbtest.Dim, EncoderID: "test@1:abc"}); err != nil {
		t.Fatalf("open a legacy collection: %v", err)
	}
	if err := s.Upsert(ctx, name, rows[3:]); err != nil {
		t.Fatalf("write to a legacy collection: %v", err)
	}
	got, err := s.Get(ctx, name, []string{rows[0].ID, rows[4].ID})
	if err != nil || len(got) != 2 {
		t.Fatalf("Get: %d rows, %v", len(got), err)
	}
	for _, g := range got {
		if g.BPMSource != "" || g.KeySource != "" || g.InstrumentSource != "" || g.BPMConfidence != 0 || g.KeyConfidence != 0 {
			t.Errorf("legacy row %s has provenance %+v", g.ID, g)
		}
	}
	if got[1].Pack != rows[4].Pack || got[1].BPM != rows[4].BPM {
		t.Errorf("legacy write lost fields: %+v", got[1])
	}
	if h, err := s.Search(ctx, name, rows[4].Embedding, 1, vectordb.Filter{}); err != nil || len(h) != 1 || h[0].ID != rows[4].ID {
		t.Errorf("search a legacy collection: %v, %v", h, err)
	}
	if l, err := s.List(ctx, name, "", 10); err != nil || len(l) != 6 {
		t.Errorf("list a legacy collection: %d rows, %v", len(l), err)
	}
	// Without the health fields nothing is flagged: the rows read back unscored, and the
	// anomaly filters pass none (anomalous only) or all (not anomalous).
	for _, g := range got {
		if g.Health != (vectordb.Health{}) {
			t.Errorf("legacy row %s has health %+v", g.ID, g.Health)
		}
	}
	for mode, want := range map[vectordb.AnomalyFilter]int{vectordb.OnlyAnomalous: 0, vectordb.NotAnomalous: 6} {
		f := vectordb.Filter{Anomalous: mode}
		if n, err := s.CountMatching(ctx, name, f); err != nil || n != want {
			t.Errorf("legacy count with anomaly filter %d: %d, %v; want %d", mode, n, err, want)
		}
		if h, err := s.Search(ctx, name, rows[4].Embedding, 10, f); err != nil || len(h) != want {
			t.Errorf("legacy search with anomaly filter %d: %d hits, %v; want %d", mode, len(h), err, want)
		}
	}
}
