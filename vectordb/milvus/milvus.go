package milvus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/loopmatch/loopmatch/vectordb"
)

// Field names of the schema.
const (
	fID, fInstrument, fPack, fPath, fKey, fBundle = "id", "instrument", "pack", "path", "key", "bundle_id"
	fBPM, fDuration, fRate, fIngested, fVec       = "bpm", "duration", "sample_rate", "ingested_at", "embedding"
	descPrefix                                    = "loopmatch collection "
)

// Provenance fields, added after the first schema. Milvus cannot add a field to an
// existing collection, so a collection created before them keeps its schema: it opens,
// reads (the fields come back empty) and accepts writes (the fields are not written);
// re-encoding (loopmatch ingest --reencode) rebuilds it with them.
const (
	fBPMSource, fBPMConf, fKeySource, fKeyConf, fInstSource = "bpm_source", "bpm_confidence", "key_source", "key_confidence", "instrument_source"
)

// Health fields (the anomaly score, its flag and the simple checks), added after the
// provenance fields and handled the same way: a collection created before them opens,
// reads (the fields come back zero: not scored), accepts writes (the fields are not
// written) and filters on the flag as if nothing were flagged; re-encoding rebuilds it
// with them.
const (
	fAnomalyModel, fAnomalyScore, fAnomalous = "anomaly_model", "anomaly_score", "anomalous"
	fClip, fDC, fSilence, fSeamJump          = "clip_ratio", "dc_offset", "silence_share", "seam_jump"
	fSeamChange, fOffGrid                    = "seam_change", "offgrid_onsets"
)

// Kind fields (a one-shot's kind, its source and confidence), added after the health
// fields and handled the same way: a collection created before them reads no kind,
// writes none, and a kind filter matches none of its rows (they have no kind).
const fKind, fKindSource, fKindConf = "kind", "kind_source", "kind_confidence"

var kindFields = []string{fKind, fKindSource, fKindConf}

var healthFields = []string{fAnomalyModel, fAnomalyScore, fAnomalous, fClip, fDC, fSilence, fSeamJump, fSeamChange, fOffGrid}

var baseFields = []string{fID, fInstrument, fPack, fPath, fKey, fBundle, fBPM, fDuration, fRate, fIngested}

// scalarFields are the fields a read asks for: the provenance and health fields only
// where the collection has them.
func scalarFields(in info) []string {
	out := append([]string{}, baseFields...)
	if in.prov {
		out = append(out, fBPMSource, fBPMConf, fKeySource, fKeyConf, fInstSource)
	}
	if in.health {
		out = append(out, healthFields...)
	}
	if in.kind {
		out = append(out, kindFields...)
	}
	return out
}

// info is what the store remembers of a collection's schema.
type info struct {
	dim    int
	prov   bool // has the provenance fields
	health bool // has the health fields
	kind   bool // has the kind fields
}

// Options configure the backend.
type Options struct {
	// Consistency of reads: "strong" (tests, read-your-writes), "bounded" (default,
	// production), "session" or "eventually".
	Consistency string
	// HNSW build parameters (defaults M=16, efConstruction=200) and the search ef floor
	// (default 128; a search uses max(ef, 2k)).
	M, EfConstruction, Ef int
	// UpsertBatch rows per request (default 500).
	UpsertBatch int
	// Retries of a transient failure, with exponential backoff from 200 ms (default 5).
	Retries int
	// DialTimeout for the first connection (default 10 s).
	DialTimeout time.Duration
}

// Store is the Milvus backend.
type Store struct {
	c    client.Client
	addr string
	o    Options
	cl   entity.ConsistencyLevel

	mu   sync.Mutex
	info map[string]info
}

// Open connects to Milvus at addr (host:port).
func Open(ctx context.Context, addr string, o Options) (*Store, error) {
	if o.M == 0 {
		o.M = 16
	}
	if o.EfConstruction == 0 {
		o.EfConstruction = 200
	}
	if o.Ef == 0 {
		o.Ef = 128
	}
	if o.UpsertBatch == 0 {
		o.UpsertBatch = 500
	}
	if o.Retries == 0 {
		o.Retries = 5
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = 10 * time.Second
	}
	cl, err := consistency(o.Consistency)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, o.DialTimeout)
	defer cancel()
	c, err := client.NewClient(dctx, client.Config{Address: addr})
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach Milvus at %s (%v): start it (docker compose up -d milvus, or scripts/milvus.sh start DIR) or fix --store milvus://host:port", vectordb.ErrUnavailable, addr, err)
	}
	return &Store{c: c, addr: addr, o: o, cl: cl, info: map[string]info{}}, nil
}

func consistency(s string) (entity.ConsistencyLevel, error) {
	switch strings.ToLower(s) {
	case "", "bounded":
		return entity.ClBounded, nil
	case "strong":
		return entity.ClStrong, nil
	case "session":
		return entity.ClSession, nil
	case "eventually":
		return entity.ClEventually, nil
	}
	return 0, fmt.Errorf("%w: consistency %q: use strong, bounded, session or eventually", vectordb.ErrInvalid, s)
}

// retry runs f again on transient gRPC failures (server restarting, overloaded,
// deadline), with exponential backoff; other errors return at once.
func (s *Store) retry(ctx context.Context, what string, f func() error) error {
	delay := 200 * time.Millisecond
	var err error
	for attempt := 0; attempt <= s.o.Retries; attempt++ {
		if err = f(); err == nil {
			return nil
		}
		if !transient(err) || attempt == s.o.Retries {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("milvus %s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay *= 2
	}
	if transient(err) {
		return fmt.Errorf("milvus %s at %s: %w: %v: check the server is running and healthy", what, s.addr, vectordb.ErrUnavailable, err)
	}
	return fmt.Errorf("milvus %s: %w", what, err)
}

func transient(err error) bool {
	if st, ok := status.FromError(errors.Unwrap(err)); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			return true
		}
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "unavailable") || strings.Contains(msg, "not ready")
}

type description struct {
	EncoderID string `json:"bundle_id"`
}

// EnsureCollection implements vectordb.Store.
func (s *Store) EnsureCollection(ctx context.Context, c vectordb.Collection) error {
	if err := vectordb.ValidName(c.Name); err != nil {
		return err
	}
	if c.Dim < 1 || c.Dim > 32768 {
		return fmt.Errorf("%w: dimension %d, Milvus takes 1..32768", vectordb.ErrInvalid, c.Dim)
	}
	have, err := s.describe(ctx, c.Name)
	if err == nil {
		lib := "milvus://" + s.addr
		if have.Dim != c.Dim {
			return fmt.Errorf("%w: collection %s holds %d-dimensional vectors (encoder %s), the loaded encoder %s makes %d: %s", vectordb.ErrDimensionMismatch, c.Name, have.Dim, orUnknown(have.EncoderID), orUnknown(c.EncoderID), c.Dim, vectordb.ReencodeHint(lib))
		}
		if c.EncoderID != "" && !vectordb.SameEncoder(have.EncoderID, c.EncoderID) {
			return fmt.Errorf("%w: collection %s was encoded by %s, the loaded bundle's encoder is %s: %s", vectordb.ErrEncoderMismatch, c.Name, orUnknown(have.EncoderID), c.EncoderID, vectordb.ReencodeHint(lib))
		}
		return s.load(ctx, c.Name)
	}
	if !errors.Is(err, vectordb.ErrNoCollection) {
		return err
	}
	desc, _ := json.Marshal(description{EncoderID: c.EncoderID})
	vs := func(name string, n int64) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeVarChar).WithMaxLength(n)
	}
	dbl := func(name string) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeDouble)
	}
	schema := entity.NewSchema().WithName(c.Name).WithDescription(descPrefix + string(desc)).
		WithField(vs(fID, 512).WithIsPrimaryKey(true)).
		WithField(vs(fInstrument, 64)).WithField(vs(fPack, 1024)).WithField(vs(fPath, 4096)).
		WithField(vs(fKey, 64)).WithField(vs(fBundle, 256)).
		WithField(entity.NewField().WithName(fBPM).WithDataType(entity.FieldTypeDouble)).
		WithField(entity.NewField().WithName(fDuration).WithDataType(entity.FieldTypeDouble)).
		WithField(entity.NewField().WithName(fRate).WithDataType(entity.FieldTypeInt64)).
		WithField(entity.NewField().WithName(fIngested).WithDataType(entity.FieldTypeInt64)).
		WithField(vs(fBPMSource, 16)).WithField(entity.NewField().WithName(fBPMConf).WithDataType(entity.FieldTypeDouble)).
		WithField(vs(fKeySource, 16)).WithField(entity.NewField().WithName(fKeyConf).WithDataType(entity.FieldTypeDouble)).
		WithField(vs(fInstSource, 16)).
		WithField(vs(fAnomalyModel, 256)).WithField(dbl(fAnomalyScore)).
		WithField(entity.NewField().WithName(fAnomalous).WithDataType(entity.FieldTypeBool)).
		WithField(dbl(fClip)).WithField(dbl(fDC)).WithField(dbl(fSilence)).WithField(dbl(fSeamJump)).
		WithField(dbl(fSeamChange)).WithField(dbl(fOffGrid)).
		WithField(vs(fKind, vectordb.MaxKindLen)).WithField(vs(fKindSource, 16)).WithField(dbl(fKindConf)).
		WithField(entity.NewField().WithName(fVec).WithDataType(entity.FieldTypeFloatVector).WithDim(int64(c.Dim)))
	if err := s.retry(ctx, "create collection "+c.Name, func() error {
		return s.c.CreateCollection(ctx, schema, 1, client.WithConsistencyLevel(s.cl))
	}); err != nil {
		return err
	}
	idx, err := entity.NewIndexHNSW(entity.COSINE, s.o.M, s.o.EfConstruction)
	if err != nil {
		return fmt.Errorf("milvus HNSW parameters: %w", err)
	}
	if err := s.retry(ctx, "create index on "+c.Name, func() error {
		return s.c.CreateIndex(ctx, c.Name, fVec, idx, false)
	}); err != nil {
		return err
	}
	s.mu.Lock()
	s.info[c.Name] = info{dim: c.Dim, prov: true, health: true, kind: true}
	s.mu.Unlock()
	return s.load(ctx, c.Name)
}

func orUnknown(id string) string {
	if id == "" {
		return "(not recorded)"
	}
	return id
}

func (s *Store) has(ctx context.Context, name string) (bool, error) {
	var ok bool
	err := s.retry(ctx, "has collection "+name, func() (err error) {
		ok, err = s.c.HasCollection(ctx, name)
		return err
	})
	return ok, err
}

func (s *Store) forget(names ...string) {
	s.mu.Lock()
	for _, n := range names {
		delete(s.info, n)
	}
	s.mu.Unlock()
}

// DropCollection implements vectordb.Store.
func (s *Store) DropCollection(ctx context.Context, name string) error {
	if err := vectordb.ValidName(name); err != nil {
		return err
	}
	ok, err := s.has(ctx, name)
	if err != nil || !ok {
		return err
	}
	if _, err := s.describe(ctx, name); err != nil {
		return err // not made by loopmatch: never drop it
	}
	defer s.forget(name)
	return s.retry(ctx, "drop collection "+name, func() error { return s.c.DropCollection(ctx, name) })
}

// ReplaceCollection implements vectordb.Store. Milvus has no atomic swap, so dst is
// first renamed to dst+vectordb.ParkedSuffix, then src to dst, then the old one dropped. A
// crash between the renames leaves no dst for a moment (src and the parked old one
// still whole); calling ReplaceCollection again with the same names finishes.
func (s *Store) ReplaceCollection(ctx context.Context, src, dst string) error {
	if err := vectordb.ValidName(dst); err != nil {
		return err
	}
	if src == dst {
		return fmt.Errorf("%w: replace collection %s by itself", vectordb.ErrInvalid, src)
	}
	parked := dst + vectordb.ParkedSuffix
	defer s.forget(src, dst, parked)
	hasSrc, err := s.has(ctx, src)
	if err != nil {
		return err
	}
	if !hasSrc {
		return fmt.Errorf("replace collection %s by %s: %w: %q", dst, src, vectordb.ErrNoCollection, src)
	}
	if _, err := s.describe(ctx, src); err != nil {
		return fmt.Errorf("replace collection %s by %s: %w", dst, src, err)
	}
	hasDst, err := s.has(ctx, dst)
	if err != nil {
		return err
	}
	if hasDst {
		if _, err := s.describe(ctx, dst); err != nil {
			return fmt.Errorf("replace collection %s by %s: %w", dst, src, err)
		}
		// A parked collection beside a live dst is left from a finished swap.
		if err := s.DropCollection(ctx, parked); err != nil {
			return fmt.Errorf("replace collection %s: drop the leftover %s: %w", dst, parked, err)
		}
		if err := s.retry(ctx, "rename collection "+dst, func() error { return s.c.RenameCollection(ctx, dst, parked) }); err != nil {
			return fmt.Errorf("replace collection %s by %s: park the old one: %w", dst, src, err)
		}
	}
	if err := s.retry(ctx, "rename collection "+src, func() error { return s.c.RenameCollection(ctx, src, dst) }); err != nil {
		return fmt.Errorf("replace collection %s by %s: rename: %w: run the same command again to finish", dst, src, err)
	}
	s.forget(src, dst, parked)
	if err := s.DropCollection(ctx, parked); err != nil {
		return fmt.Errorf("replace collection %s: drop the old one (%s): %w", dst, parked, err)
	}
	return s.load(ctx, dst)
}

func (s *Store) load(ctx context.Context, name string) error {
	return s.retry(ctx, "load collection "+name, func() error { return s.c.LoadCollection(ctx, name, false) })
}

func (s *Store) describe(ctx context.Context, name string) (vectordb.Collection, error) {
	var coll *entity.Collection
	var exists bool
	if err := s.retry(ctx, "has collection", func() (err error) {
		exists, err = s.c.HasCollection(ctx, name)
		return err
	}); err != nil {
		return vectordb.Collection{}, err
	}
	if !exists {
		return vectordb.Collection{}, fmt.Errorf("%w: %q (ingest loops into it first)", vectordb.ErrNoCollection, name)
	}
	if err := s.retry(ctx, "describe collection "+name, func() (err error) {
		coll, err = s.c.DescribeCollection(ctx, name)
		return err
	}); err != nil {
		return vectordb.Collection{}, err
	}
	out := vectordb.Collection{Name: name}
	if coll.Schema == nil || !strings.HasPrefix(coll.Schema.Description, descPrefix) {
		return out, fmt.Errorf("%w: Milvus collection %s was not made by loopmatch: use another name", vectordb.ErrInvalid, name)
	}
	var d description
	json.Unmarshal([]byte(strings.TrimPrefix(coll.Schema.Description, descPrefix)), &d)
	out.EncoderID = d.EncoderID
	var in info
	for _, f := range coll.Schema.Fields {
		switch f.Name {
		case fVec:
			out.Dim, _ = strconv.Atoi(f.TypeParams[entity.TypeParamDim])
		case fBPMSource:
			in.prov = true
		case fAnomalous:
			in.health = true
		case fKind:
			in.kind = true
		}
	}
	in.dim = out.Dim
	s.mu.Lock()
	s.info[name] = in
	s.mu.Unlock()
	return out, nil
}

// schema returns what the store knows of a collection's schema, describing it once.
func (s *Store) schema(ctx context.Context, name string) (info, error) {
	s.mu.Lock()
	in, ok := s.info[name]
	s.mu.Unlock()
	if ok {
		return in, nil
	}
	if _, err := s.describe(ctx, name); err != nil {
		return info{}, err
	}
	s.mu.Lock()
	in = s.info[name]
	s.mu.Unlock()
	return in, nil
}

func (s *Store) dim(ctx context.Context, name string) (int, error) {
	in, err := s.schema(ctx, name)
	return in.dim, err
}

// Collections implements vectordb.Store.
func (s *Store) Collections(ctx context.Context) ([]vectordb.Collection, error) {
	var cs []*entity.Collection
	if err := s.retry(ctx, "list collections", func() (err error) {
		cs, err = s.c.ListCollections(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	var out []vectordb.Collection
	for _, c := range cs {
		d, err := s.describe(ctx, c.Name)
		if err != nil {
			continue // not ours
		}
		if d.Count, err = s.Count(ctx, c.Name); err != nil {
			// dropped between the listing and the count (another client, or a --reencode
			// swap): it is no longer there to list, which is not the caller's failure
			if ok, herr := s.has(ctx, c.Name); herr == nil && !ok {
				s.forget(c.Name)
				continue
			}
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Upsert implements vectordb.Store, in batches of Options.UpsertBatch rows.
func (s *Store) Upsert(ctx context.Context, name string, rows []vectordb.Row) error {
	in, err := s.schema(ctx, name)
	if err != nil {
		return err
	}
	dim := in.dim
	if err := vectordb.CheckRows(dim, rows); err != nil {
		return err
	}
	rows = lastByID(rows)
	for start := 0; start < len(rows); start += s.o.UpsertBatch {
		b := rows[start:min(start+s.o.UpsertBatch, len(rows))]
		cols := columns(in, b)
		if err := s.retry(ctx, fmt.Sprintf("upsert %d rows into %s", len(b), name), func() error {
			_, err := s.c.Upsert(ctx, name, "", cols...)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// lastByID keeps the last row for each id, as a sequence of upserts would.
func lastByID(rows []vectordb.Row) []vectordb.Row {
	seen := map[string]int{}
	var out []vectordb.Row
	for _, r := range rows {
		if i, ok := seen[r.ID]; ok {
			out[i] = r
			continue
		}
		seen[r.ID] = len(out)
		out = append(out, r)
	}
	return out
}

func columns(in info, rows []vectordb.Row) []entity.Column {
	n, dim := len(rows), in.dim
	ids, inst, pack, path, key, bundle := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	bpm, dur := make([]float64, n), make([]float64, n)
	rate, ing := make([]int64, n), make([]int64, n)
	vecs := make([][]float32, n)
	for i, r := range rows {
		ids[i], inst[i], pack[i], path[i], key[i], bundle[i] = r.ID, r.Instrument, r.Pack, r.Path, r.Key, r.EncoderID
		bpm[i], dur[i], rate[i], ing[i] = r.BPM, r.Duration, int64(r.SampleRate), r.IngestedAt.UnixNano()
		vecs[i] = r.Embedding
	}
	cols := []entity.Column{
		entity.NewColumnVarChar(fID, ids), entity.NewColumnVarChar(fInstrument, inst), entity.NewColumnVarChar(fPack, pack),
		entity.NewColumnVarChar(fPath, path), entity.NewColumnVarChar(fKey, key), entity.NewColumnVarChar(fBundle, bundle),
		entity.NewColumnDouble(fBPM, bpm), entity.NewColumnDouble(fDuration, dur), entity.NewColumnInt64(fRate, rate),
		entity.NewColumnInt64(fIngested, ing), entity.NewColumnFloatVector(fVec, dim, vecs),
	}
	if in.health {
		cols = append(cols, healthColumns(rows)...)
	}
	if in.kind {
		kind, ksrc, kconf := make([]string, n), make([]string, n), make([]float64, n)
		for i, r := range rows {
			kind[i], ksrc[i], kconf[i] = r.Kind, r.KindSource, r.KindConfidence
		}
		cols = append(cols, entity.NewColumnVarChar(fKind, kind), entity.NewColumnVarChar(fKindSource, ksrc), entity.NewColumnDouble(fKindConf, kconf))
	}
	if !in.prov {
		return cols
	}
	bsrc, ksrc, isrc := make([]string, n), make([]string, n), make([]string, n)
	bconf, kconf := make([]float64, n), make([]float64, n)
	for i, r := range rows {
		bsrc[i], ksrc[i], isrc[i] = r.BPMSource, r.KeySource, r.InstrumentSource
		bconf[i], kconf[i] = r.BPMConfidence, r.KeyConfidence
	}
	return append(cols,
		entity.NewColumnVarChar(fBPMSource, bsrc), entity.NewColumnDouble(fBPMConf, bconf),
		entity.NewColumnVarChar(fKeySource, ksrc), entity.NewColumnDouble(fKeyConf, kconf),
		entity.NewColumnVarChar(fInstSource, isrc))
}

// healthColumns are the rows' health fields, for a collection that has them.
func healthColumns(rows []vectordb.Row) []entity.Column {
	n := len(rows)
	model, flag := make([]string, n), make([]bool, n)
	score, clip, dc, sil, jump, change, grid := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, r := range rows {
		model[i], flag[i], score[i] = r.AnomalyModel, r.Anomalous, r.AnomalyScore
		clip[i], dc[i], sil[i], jump[i], change[i], grid[i] = r.ClipRatio, r.DCOffset, r.SilenceShare, r.SeamJump, r.SeamChange, r.OffGrid
	}
	return []entity.Column{
		entity.NewColumnVarChar(fAnomalyModel, model), entity.NewColumnDouble(fAnomalyScore, score),
		entity.NewColumnBool(fAnomalous, flag), entity.NewColumnDouble(fClip, clip), entity.NewColumnDouble(fDC, dc),
		entity.NewColumnDouble(fSilence, sil), entity.NewColumnDouble(fSeamJump, jump),
		entity.NewColumnDouble(fSeamChange, change), entity.NewColumnDouble(fOffGrid, grid),
	}
}

// rowsFrom turns a result set into rows (embeddings when the set has them).
func rowsFrom(rs client.ResultSet) ([]vectordb.Row, error) {
	idc, ok := rs.GetColumn(fID).(*entity.ColumnVarChar)
	if !ok {
		return nil, errors.New("milvus result without an id column")
	}
	n := idc.Len()
	out := make([]vectordb.Row, n)
	str := func(name string, set func(r *vectordb.Row, v string)) {
		if c, ok := rs.GetColumn(name).(*entity.ColumnVarChar); ok {
			for i, v := range c.Data() {
				set(&out[i], v)
			}
		}
	}
	str(fID, func(r *vectordb.Row, v string) { r.ID = v })
	str(fInstrument, func(r *vectordb.Row, v string) { r.Instrument = v })
	str(fPack, func(r *vectordb.Row, v string) { r.Pack = v })
	str(fPath, func(r *vectordb.Row, v string) { r.Path = v })
	str(fKey, func(r *vectordb.Row, v string) { r.Key = v })
	str(fBundle, func(r *vectordb.Row, v string) { r.EncoderID = v })
	str(fBPMSource, func(r *vectordb.Row, v string) { r.BPMSource = v })
	str(fKeySource, func(r *vectordb.Row, v string) { r.KeySource = v })
	str(fInstSource, func(r *vectordb.Row, v string) { r.InstrumentSource = v })
	str(fKind, func(r *vectordb.Row, v string) { r.Kind = v })
	str(fKindSource, func(r *vectordb.Row, v string) { r.KindSource = v })
	num := func(name string, set func(r *vectordb.Row, v float64)) {
		if c, ok := rs.GetColumn(name).(*entity.ColumnDouble); ok {
			for i, v := range c.Data() {
				set(&out[i], v)
			}
		}
	}
	num(fBPM, func(r *vectordb.Row, v float64) { r.BPM = v })
	num(fDuration, func(r *vectordb.Row, v float64) { r.Duration = v })
	num(fBPMConf, func(r *vectordb.Row, v float64) { r.BPMConfidence = v })
	num(fKeyConf, func(r *vectordb.Row, v float64) { r.KeyConfidence = v })
	num(fKindConf, func(r *vectordb.Row, v float64) { r.KindConfidence = v })
	str(fAnomalyModel, func(r *vectordb.Row, v string) { r.AnomalyModel = v })
	num(fAnomalyScore, func(r *vectordb.Row, v float64) { r.AnomalyScore = v })
	num(fClip, func(r *vectordb.Row, v float64) { r.ClipRatio = v })
	num(fDC, func(r *vectordb.Row, v float64) { r.DCOffset = v })
	num(fSilence, func(r *vectordb.Row, v float64) { r.SilenceShare = v })
	num(fSeamJump, func(r *vectordb.Row, v float64) { r.SeamJump = v })
	num(fSeamChange, func(r *vectordb.Row, v float64) { r.SeamChange = v })
	num(fOffGrid, func(r *vectordb.Row, v float64) { r.OffGrid = v })
	if c, ok := rs.GetColumn(fAnomalous).(*entity.ColumnBool); ok {
		for i, v := range c.Data() {
			out[i].Anomalous = v
		}
	}
	if c, ok := rs.GetColumn(fRate).(*entity.ColumnInt64); ok {
		for i, v := range c.Data() {
			out[i].SampleRate = int(v)
		}
	}
	if c, ok := rs.GetColumn(fIngested).(*entity.ColumnInt64); ok {
		for i, v := range c.Data() {
			out[i].IngestedAt = time.Unix(0, v).UTC()
		}
	}
	if c, ok := rs.GetColumn(fVec).(*entity.ColumnFloatVector); ok {
		for i, v := range c.Data() {
			out[i].Embedding = v
		}
	}
	return out, nil
}

func (s *Store) byIDs(ctx context.Context, name string, ids []string, fields []string) ([]vectordb.Row, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var out []vectordb.Row
	const chunk = 1000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		var rs client.ResultSet
		if err := s.retry(ctx, "query "+name, func() (err error) {
			// Not QueryByPks: the SDK builds that expression without escaping quotes.
			rs, err = s.c.Query(ctx, name, nil, fID+" in "+quoteList(part), fields,
				client.WithSearchQueryConsistencyLevel(s.cl))
			return err
		}); err != nil {
			return nil, err
		}
		rows, err := rowsFrom(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, rows...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get implements vectordb.Store.
func (s *Store) Get(ctx context.Context, name string, ids []string) ([]vectordb.Row, error) {
	in, err := s.schema(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.byIDs(ctx, name, ids, append(scalarFields(in), fVec))
}

// Has implements vectordb.Store.
func (s *Store) Has(ctx context.Context, name string, ids []string) (map[string]string, error) {
	if _, err := s.schema(ctx, name); err != nil {
		return nil, err
	}
	rows, err := s.byIDs(ctx, name, ids, []string{fID, fBundle})
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.ID] = r.EncoderID
	}
	return out, nil
}

// Delete implements vectordb.Store.
func (s *Store) Delete(ctx context.Context, name string, ids []string) error {
	if _, err := s.dim(ctx, name); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	const chunk = 1000
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		// Not DeleteByPks: the SDK builds that expression without escaping quotes.
		if err := s.retry(ctx, "delete from "+name, func() error {
			return s.c.Delete(ctx, name, "", fID+" in "+quoteList(part))
		}); err != nil {
			return err
		}
	}
	return nil
}

// Count implements vectordb.Store.
func (s *Store) Count(ctx context.Context, name string) (int, error) {
	return s.count(ctx, name, "")
}

// CountMatching implements vectordb.Store.
func (s *Store) CountMatching(ctx context.Context, name string, f vectordb.Filter) (int, error) {
	if err := f.Check(); err != nil {
		return 0, err
	}
	in, err := s.schema(ctx, name)
	if err != nil {
		return 0, err
	}
	return s.count(ctx, name, expr(f, in))
}

func (s *Store) count(ctx context.Context, name, expr string) (int, error) {
	if _, err := s.dim(ctx, name); err != nil {
		return 0, err
	}
	var rs client.ResultSet
	if err := s.retry(ctx, "count "+name, func() (err error) {
		rs, err = s.c.Query(ctx, name, nil, expr, []string{"count(*)"}, client.WithSearchQueryConsistencyLevel(s.cl))
		return err
	}); err != nil {
		return 0, err
	}
	c, ok := rs.GetColumn("count(*)").(*entity.ColumnInt64)
	if !ok || c.Len() != 1 {
		return 0, fmt.Errorf("milvus count %s: unexpected result", name)
	}
	return int(c.Data()[0]), nil
}

// List implements vectordb.Store. Milvus returns query results unordered, so List reads
// the ids after the cursor, sorts them and fetches the page's fields.
func (s *Store) List(ctx context.Context, name, after string, limit int) ([]vectordb.Row, error) {
	if limit < 1 {
		return nil, fmt.Errorf("%w: limit %d", vectordb.ErrInvalid, limit)
	}
	in, err := s.schema(ctx, name)
	if err != nil {
		return nil, err
	}
	expr := fID + " > " + Quote(after)
	var rs client.ResultSet
	if err := s.retry(ctx, "list "+name, func() (err error) {
		rs, err = s.c.Query(ctx, name, nil, expr, []string{fID}, client.WithSearchQueryConsistencyLevel(s.cl))
		return err
	}); err != nil {
		return nil, err
	}
	idc, _ := rs.GetColumn(fID).(*entity.ColumnVarChar)
	if idc == nil {
		return nil, nil
	}
	ids := append([]string(nil), idc.Data()...)
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	return s.byIDs(ctx, name, ids, scalarFields(in))
}

// Search implements vectordb.Store. It asks for a few more candidates than k and sorts
// by score then id, so equal scores come back in the same order as the embedded store.
func (s *Store) Search(ctx context.Context, name string, vec []float32, k int, f vectordb.Filter) ([]vectordb.Hit, error) {
	in, err := s.schema(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := vectordb.CheckQuery(in.dim, vec, k); err != nil {
		return nil, err
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	fetch := min(k+16, vectordb.MaxK)
	sp, err := entity.NewIndexHNSWSearchParam(min(max(s.o.Ef, 2*fetch), 32768))
	if err != nil {
		return nil, fmt.Errorf("milvus search parameters: %w", err)
	}
	ex := expr(f, in)
	var res []client.SearchResult
	// One round trip: the fields come back with the ids. (The SDK, v2.4.2 against a 2.3
	// server, reports "extra output fields" when a search finds nothing, because the
	// server then sends no field data: an empty result is empty whatever Err says.)
	if err := s.retry(ctx, "search "+name, func() (err error) {
		res, err = s.c.Search(ctx, name, nil, ex, scalarFields(in), []entity.Vector{entity.FloatVector(vec)}, fVec,
			entity.COSINE, fetch, sp, client.WithSearchQueryConsistencyLevel(s.cl))
		return err
	}); err != nil {
		return nil, err
	}
	if len(res) == 0 || res[0].ResultCount == 0 {
		return nil, nil
	}
	if res[0].Err != nil {
		return nil, fmt.Errorf("milvus search %s: reading the result: %w", name, res[0].Err)
	}
	rows, err := rowsFrom(res[0].Fields)
	if err != nil {
		return nil, fmt.Errorf("milvus search %s: %w", name, err)
	}
	if len(rows) != len(res[0].Scores) {
		return nil, fmt.Errorf("milvus search %s: %d rows for %d scores", name, len(rows), len(res[0].Scores))
	}
	hits := make([]vectordb.Hit, len(rows))
	for i, r := range rows {
		hits[i] = vectordb.Hit{Row: r, Score: res[0].Scores[i]}
	}
	vectordb.SortHits(hits)
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits, nil
}

// Expr turns a typed filter into a Milvus boolean expression for a collection with the
// health fields; "" filters nothing. It says what vectordb.Filter.MatchRow says, row for
// row.
func Expr(f vectordb.Filter) string { return expr(f, info{health: true, kind: true}) }

// expr is Expr for a collection with or without the health fields: without them no loop
// is flagged, so OnlyAnomalous matches nothing (ids are never empty) and NotAnomalous
// everything.
func expr(f vectordb.Filter, in info) string {
	health := in.health
	var parts []string
	switch {
	case len(f.Kinds) > 0 && in.kind:
		parts = append(parts, fKind+" in "+quoteList(f.Kinds))
	case len(f.Kinds) > 0: // no row of a collection without kinds has one
		parts = append(parts, fID+` == ""`)
	}
	switch {
	case f.Anomalous == vectordb.OnlyAnomalous && health:
		parts = append(parts, fAnomalous+" == true")
	case f.Anomalous == vectordb.OnlyAnomalous:
		parts = append(parts, fID+` == ""`)
	case f.Anomalous == vectordb.NotAnomalous && health:
		parts = append(parts, fAnomalous+" == false")
	}
	if t := tempoExpr(f); t != "" {
		parts = append(parts, t)
	}
	if k := keyExpr(f); k != "" {
		parts = append(parts, k)
	}
	list := quoteList
	if len(f.Packs) > 0 {
		parts = append(parts, fPack+" in "+list(f.Packs))
	}
	if len(f.ExcludePacks) > 0 {
		parts = append(parts, fPack+" not in "+list(f.ExcludePacks))
	}
	if len(f.ExcludeIDs) > 0 {
		parts = append(parts, fID+" not in "+list(f.ExcludeIDs))
	}
	return strings.Join(parts, " && ")
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// tempoExpr is the tempo part of Expr: unknown tempo is bpm <= 0.
func tempoExpr(f vectordb.Filter) string {
	unknown := fBPM + " <= 0"
	switch {
	case f.UnknownBPM == vectordb.UnknownOnly:
		return unknown
	case !f.HasTempo():
		return ""
	}
	conds := []string{fBPM + " > 0"}
	if f.MinBPM > 0 && !math.IsInf(f.MinBPM, 0) {
		conds = append(conds, fBPM+" >= "+num(f.MinBPM))
	}
	if f.MaxBPM > 0 && !math.IsInf(f.MaxBPM, 0) {
		conds = append(conds, fBPM+" <= "+num(f.MaxBPM))
	}
	if len(f.BPMRanges) > 0 {
		alts := make([]string, len(f.BPMRanges))
		for i, r := range f.BPMRanges {
			alts[i] = "(" + fBPM + " >= " + num(r.Min) + " && " + fBPM + " <= " + num(r.Max) + ")"
		}
		conds = append(conds, "("+strings.Join(alts, " || ")+")")
	}
	known := "(" + strings.Join(conds, " && ") + ")"
	if f.UnknownBPM == vectordb.UnknownIncluded {
		return "(" + unknown + " || " + known + ")"
	}
	return known
}

// keyExpr is the key part of Expr: unknown key is "".
func keyExpr(f vectordb.Filter) string {
	unknown := fKey + ` == ""`
	switch {
	case f.UnknownKey == vectordb.UnknownOnly:
		return unknown
	case !f.HasKey():
		return ""
	}
	known := "(" + fKey + ` != "" && ` + fKey + " in " + quoteList(f.Keys) + ")"
	if f.UnknownKey == vectordb.UnknownIncluded {
		return "(" + unknown + " || " + known + ")"
	}
	return known
}

func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Quote makes a Milvus string literal: double quotes, with backslash, quote and control
// characters escaped, so no value can end the literal and inject an expression.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Flush seals the collection's growing segments so Milvus builds their HNSW index.
// Until then, freshly written rows are searched through Milvus's interim index on
// growing segments (IVF, probing 16 of 128 lists), whose recall is lower; an ingest
// that has just written many rows calls Flush at the end.
func (s *Store) Flush(ctx context.Context, name string) error {
	if _, err := s.dim(ctx, name); err != nil {
		return err
	}
	return s.retry(ctx, "flush "+name, func() error { return s.c.Flush(ctx, name, false) })
}

// Close implements vectordb.Store.
func (s *Store) Close() error { return s.c.Close() }

var _ vectordb.Store = (*Store)(nil)
