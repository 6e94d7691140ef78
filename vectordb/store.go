package vectordb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Row is one stored loop.
type Row struct {
	ID         string  `json:"id"`
	Instrument string  `json:"instrument"`
	Pack       string  `json:"pack"`
	Path       string  `json:"path"`
	BPM        float64 `json:"bpm"`
	Key        string  `json:"key"`
	Duration   float64 `json:"duration"` // seconds
	SampleRate int     `json:"sample_rate"`
	// EncoderID identifies the encoder that made Embedding (onnx.Bundle.EncoderID);
	// stored as "bundle_id", the name stores written before it kept.
	EncoderID  string    `json:"bundle_id"`
	IngestedAt time.Time `json:"ingested_at"`
	Embedding  []float32 `json:"-"`

	// Provenance: where BPM, Key and Instrument came from (one of the Source*
	// constants; "" is unknown, as in rows written before stores kept it) and, for
	// estimates from the audio, how sure the estimator was (0..1; 0 otherwise).
	BPMSource        string  `json:"bpm_source,omitempty"`
	BPMConfidence    float64 `json:"bpm_confidence,omitempty"`
	KeySource        string  `json:"key_source,omitempty"`
	KeyConfidence    float64 `json:"key_confidence,omitempty"`
	InstrumentSource string  `json:"instrument_source,omitempty"`

	// Kind is a one-shot's kind (loopid.OneShotKinds: kick, snare, ...; loopid.UnknownKind
	// when neither its name nor the kind classifier could tell), with where it came from
	// and, from the audio, the classifier's confidence; "" for loops.
	Kind           string  `json:"kind,omitempty"`
	KindSource     string  `json:"kind_source,omitempty"`
	KindConfidence float64 `json:"kind_confidence,omitempty"`

	// Library health: the anomaly model's verdict and the simple checks of the audio
	// (zero values: not scored, as in rows written before stores kept them).
	Health
}

// Where a row's metadata came from (Row.BPMSource, KeySource, InstrumentSource).
// Manifests win over names, names over the audio.
const (
	SourceManifest = "manifest" // the library's manifest (loopmatch.json / CSV)
	SourceName     = "name"     // the file's name or folders
	SourceAudio    = "audio"    // estimated from the audio (with a confidence)
	SourceFlag     = "flag"     // the ingest command's flag (instrument only)
)

// CheckSource validates a provenance value: "" or one of the Source* constants.
func CheckSource(field, v string) error {
	switch v {
	case "", SourceManifest, SourceName, SourceAudio, SourceFlag:
		return nil
	}
	return fmt.Errorf("%w: %s %q: use manifest, name, audio, flag or leave it empty", ErrInvalid, field, v)
}

// Hit is a search result: the row's stored fields and its cosine similarity to the
// query (1 is identical direction, -1 opposite; higher is better in every backend).
type Hit struct {
	Row
	Score float32 `json:"score"`
}

// Collection describes a collection: its vector dimension and the identity of the
// encoder whose embeddings it holds (stored as "bundle_id" for stores written before
// collections recorded the encoder rather than the whole bundle). The metric is always
// cosine.
type Collection struct {
	Name      string `json:"name"`
	Dim       int    `json:"dim"`
	EncoderID string `json:"bundle_id"`
	Count     int    `json:"count"`
}

// Store is a vector store of loops. Implementations are safe for concurrent use.
type Store interface {
	// EnsureCollection creates the collection, or checks that the existing one has the
	// same dimension (ErrDimensionMismatch) and encoder (ErrEncoderMismatch, compared
	// with SameEncoder; an empty EncoderID checks nothing).
	EnsureCollection(ctx context.Context, c Collection) error
	// DropCollection removes a collection and its rows; a missing one is no error.
	DropCollection(ctx context.Context, name string) error
	// ReplaceCollection makes the collection src the collection dst (dimension, encoder
	// and rows), dropping what dst held, and removes the name src. Readers see dst's old
	// rows or its new ones, never a mix. After a crash, dst holds its old rows or the new
	// ones, and src (if still there) its rows: calling ReplaceCollection again finishes.
	ReplaceCollection(ctx context.Context, src, dst string) error
	// Collections lists the collections with their row counts.
	Collections(ctx context.Context) ([]Collection, error)
	// Upsert inserts or replaces rows by id; writing the same rows twice changes nothing.
	Upsert(ctx context.Context, collection string, rows []Row) error
	// Get returns the rows for the ids that exist, embeddings included, in id order.
	Get(ctx context.Context, collection string, ids []string) ([]Row, error)
	// Has reports which ids exist, with the encoder id each was encoded with.
	Has(ctx context.Context, collection string, ids []string) (map[string]string, error)
	// Delete removes rows by id; missing ids are ignored.
	Delete(ctx context.Context, collection string, ids []string) error
	// Search returns up to k rows most similar to vec, best first, ties broken by id.
	Search(ctx context.Context, collection string, vec []float32, k int, f Filter) ([]Hit, error)
	// Count is the number of rows in the collection.
	Count(ctx context.Context, collection string) (int, error)
	// CountMatching is the number of rows that pass the filter (Filter.LeftOutUnknown
	// makes the filter that counts what a search left out for an unknown tempo or key).
	CountMatching(ctx context.Context, collection string, f Filter) (int, error)
	// List pages through rows in id order: ids greater than after, at most limit,
	// without embeddings.
	List(ctx context.Context, collection string, after string, limit int) ([]Row, error)
	Close() error
}

// Errors callers can test for with errors.Is.
var (
	ErrNoCollection      = errors.New("no such collection")
	ErrDimensionMismatch = errors.New("vector dimension mismatch")
	ErrEncoderMismatch   = errors.New("collection was encoded by another encoder")
	ErrInvalid           = errors.New("invalid request")
	ErrLocked            = errors.New("store is in use by another process")
	ErrUnavailable       = errors.New("store unavailable")
	// ErrUnusable: the store's place cannot hold a store (a file where a folder should
	// be, no permission to write, a damaged file).
	ErrUnusable = errors.New("store location is unusable")
)

// SameEncoder reports whether two recorded encoder ids name the same encoder. Ids of
// the form "label:digest" (onnx.Bundle.EncoderID: "name@version:digest") compare by
// digest only, so a bundle that changed its version, decoders or mappers but kept the
// encoder still matches; other ids compare whole.
func SameEncoder(a, b string) bool {
	ia, ib := strings.LastIndexByte(a, ':'), strings.LastIndexByte(b, ':')
	if ia < 0 || ib < 0 {
		return a == b
	}
	return a[ia+1:] == b[ib+1:]
}

// ReencodeHint is what a mismatch error tells the user to run; library names the
// store (its folder or address) when the caller knows it.
func ReencodeHint(library string) string {
	if library == "" {
		return "re-encode the library with the loaded bundle: loopmatch ingest --reencode (or point --bundle at the bundle that made it)"
	}
	return fmt.Sprintf("re-encode the library with the loaded bundle: loopmatch ingest --reencode --store %s (or point --bundle at the bundle that made it)", library)
}

// ParkedSuffix: a backend that cannot swap collections atomically (Milvus) parks the
// replaced collection dst as dst+ParkedSuffix while ReplaceCollection runs, so a
// caller that finds src and dst+ParkedSuffix but no dst knows a replacement was cut
// short and may finish it.
const ParkedSuffix = "__replaced"

// MaxKindLen bounds a row's kind (both backends store it in a field this long).
const MaxKindLen = 32

// MaxK bounds one search's result count.
const MaxK = 10000

// CheckRows validates rows before any backend writes them, so a bad row never gets
// half-way into a store.
func CheckRows(dim int, rows []Row) error {
	for i, r := range rows {
		if r.ID == "" {
			return fmt.Errorf("%w: row %d has an empty id", ErrInvalid, i)
		}
		if len(r.ID) > 512 {
			return fmt.Errorf("%w: row %d id is %d bytes, at most 512", ErrInvalid, i, len(r.ID))
		}
		for _, f := range [...]struct{ name, v string }{{"bpm_source", r.BPMSource}, {"key_source", r.KeySource}, {"instrument_source", r.InstrumentSource}, {"kind_source", r.KindSource}} {
			if err := CheckSource(f.name, f.v); err != nil {
				return fmt.Errorf("row %q: %w", r.ID, err)
			}
		}
		for _, f := range [...]struct {
			name string
			v    float64
		}{{"bpm_confidence", r.BPMConfidence}, {"key_confidence", r.KeyConfidence}, {"kind_confidence", r.KindConfidence}} {
			if !(f.v >= 0 && f.v <= 1) {
				return fmt.Errorf("%w: row %q %s = %v, want 0..1", ErrInvalid, r.ID, f.name, f.v)
			}
		}
		if len(r.Kind) > MaxKindLen {
			return fmt.Errorf("%w: row %q kind is %d bytes, at most %d", ErrInvalid, r.ID, len(r.Kind), MaxKindLen)
		}
		if err := r.Health.Check(); err != nil {
			return fmt.Errorf("row %q: %w", r.ID, err)
		}
		if len(r.Embedding) != dim {
			return fmt.Errorf("%w: row %q has %d values, the collection holds %d", ErrDimensionMismatch, r.ID, len(r.Embedding), dim)
		}
		var n float64
		for _, v := range r.Embedding {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: row %q has NaN or Inf in its embedding", ErrInvalid, r.ID)
			}
			n += float64(v) * float64(v)
		}
		if n == 0 {
			return fmt.Errorf("%w: row %q has an all-zero embedding, which has no direction for cosine", ErrInvalid, r.ID)
		}
	}
	return nil
}

// CheckQuery validates a search's vector and k.
func CheckQuery(dim int, vec []float32, k int) error {
	if len(vec) != dim {
		return fmt.Errorf("%w: query has %d values, the collection holds %d", ErrDimensionMismatch, len(vec), dim)
	}
	if k < 1 || k > MaxK {
		return fmt.Errorf("%w: k = %d, want 1..%d", ErrInvalid, k, MaxK)
	}
	var n float64
	for _, v := range vec {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: query has NaN or Inf", ErrInvalid)
		}
		n += float64(v) * float64(v)
	}
	if n == 0 {
		return fmt.Errorf("%w: all-zero query vector", ErrInvalid)
	}
	return nil
}

// Normalize returns v scaled to unit length (a copy), so a dot product is the cosine.
func Normalize(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 {
		return out
	}
	inv := 1 / math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// SortHits orders hits best first, ties by id, so every backend answers in one order.
func SortHits(h []Hit) {
	sort.Slice(h, func(i, j int) bool {
		if h[i].Score != h[j].Score {
			return h[i].Score > h[j].Score
		}
		return h[i].ID < h[j].ID
	})
}

// ValidName checks a collection name: letters, digits and underscores, starting with a
// letter (Milvus's rule, applied everywhere so a name works in both backends).
func ValidName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("%w: collection name %q: 1 to 255 characters", ErrInvalid, name)
	}
	for i, c := range name {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: collection name %q: use letters, digits and _ and start with a letter", ErrInvalid, name)
		}
	}
	return nil
}
