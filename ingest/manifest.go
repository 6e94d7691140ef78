package ingest

import (
	"bufio"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Manifest holds catalogue metadata that wins over inference, keyed by absolute,
// cleaned file path.
type Manifest struct {
	entries map[string]ManifestEntry
}

// ManifestEntry is one row of a manifest. Empty fields fall back to inference.
type ManifestEntry struct {
	Path       string  `json:"path"`
	Instrument string  `json:"instrument"`
	Pack       string  `json:"pack"`
	BPM        float64 `json:"bpm"`
	Key        string  `json:"key"`
	// Split is the optional evaluation split ("train", "val", "test", lower-cased):
	// ingest stores nothing of it; loopmatch eval uses it to pick the loops it scores.
	Split string `json:"split,omitempty"`

	// Where BPM and Key came from when not from a manifest the user wrote (an upload
	// fills them from the file's original name): vectordb.SourceName; "" is manifest.
	bpmSource, keySource string
}

// maxManifestLine bounds one JSONL line so a corrupt manifest cannot eat memory.
const maxManifestLine = 1 << 20

// LoadManifest reads a CSV (header: path,instrument,pack,bpm,key and optionally split; any
// order, extra columns ignored) or JSONL (one object per line) manifest. Relative paths are relative to the
// manifest's own folder. Errors name the line and what to fix.
func LoadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open manifest: %w", err)
	}
	defer f.Close()
	base := filepath.Dir(path)
	var rows []ManifestEntry
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		rows, err = readJSONL(f)
	case ".csv":
		rows, err = readCSV(f)
	default:
		return nil, fmt.Errorf("manifest %s: unknown format: name it .csv or .jsonl", path)
	}
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", path, err)
	}
	for i := range rows {
		if !filepath.IsAbs(rows[i].Path) {
			rows[i].Path = filepath.Join(base, rows[i].Path)
		}
	}
	return newManifest(rows), nil
}

// NewManifest builds a manifest from rows in memory (an upload's metadata, a test's),
// checked and normalised as LoadManifest checks a file's rows. Relative paths are
// relative to the working directory.
func NewManifest(entries []ManifestEntry) (*Manifest, error) {
	rows := make([]ManifestEntry, len(entries))
	for i, e := range entries {
		if err := checkEntry(&e, fmt.Sprintf("entry %d (%s)", i+1, filepath.Base(e.Path))); err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		rows[i] = e
	}
	return newManifest(rows), nil
}

// newManifest keys checked rows by absolute, cleaned path; a later row for the same
// file wins.
func newManifest(rows []ManifestEntry) *Manifest {
	m := &Manifest{entries: make(map[string]ManifestEntry, len(rows))}
	for _, r := range rows {
		r.Path = cleanAbs(r.Path)
		m.entries[r.Path] = r
	}
	return m
}

// Lookup returns the row for a file path (resolved as Apply does), with its Path
// absolute and cleaned.
func (m *Manifest) Lookup(path string) (ManifestEntry, bool) {
	if m == nil {
		return ManifestEntry{}, false
	}
	e, ok := m.entries[cleanAbs(path)]
	return e, ok
}

// Entries returns every row sorted by path, each Path absolute and cleaned. When one
// file is listed twice the last row wins, as in Apply.
func (m *Manifest) Entries() []ManifestEntry {
	if m == nil {
		return nil
	}
	out := make([]ManifestEntry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// HasSplits reports whether any row names a split.
func (m *Manifest) HasSplits() bool {
	if m == nil {
		return false
	}
	for _, e := range m.entries {
		if e.Split != "" {
			return true
		}
	}
	return false
}

func cleanAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	return filepath.Clean(p)
}

// Len is the number of manifest rows.
func (m *Manifest) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// Apply overrides inferred metadata with the manifest's non-empty fields for path.
func (m *Manifest) Apply(path string, meta Meta) Meta {
	if m == nil {
		return meta
	}
	e, ok := m.entries[cleanAbs(path)]
	if !ok {
		return meta
	}
	if e.Instrument != "" {
		meta.Instrument, meta.InstrumentSource = strings.ToLower(e.Instrument), vectordb.SourceManifest
	}
	if e.Pack != "" {
		meta.Pack = e.Pack
	}
	if e.BPM > 0 {
		meta.BPM, meta.BPMSource, meta.BPMConfidence = e.BPM, cmp.Or(e.bpmSource, vectordb.SourceManifest), 0
	}
	if e.Key != "" {
		meta.Key, meta.KeySource, meta.KeyConfidence = e.Key, cmp.Or(e.keySource, vectordb.SourceManifest), 0 // already normalised when read
	}
	return meta
}

func checkEntry(e *ManifestEntry, where string) error {
	if strings.TrimSpace(e.Path) == "" {
		return fmt.Errorf("%s: empty path: every row needs the loop's file path", where)
	}
	if math.IsNaN(e.BPM) || e.BPM < 0 || (e.BPM > 0 && e.BPM < 1) || e.BPM > 999 {
		return fmt.Errorf("%s: bpm %v out of range: give a tempo between 1 and 999 or leave it empty", where, e.BPM)
	}
	k, err := loopid.NormalizeKey(e.Key)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	e.Key = k
	// Any split name is accepted, so a catalogue's own split column never stops an ingest.
	e.Split = strings.ToLower(strings.TrimSpace(e.Split))
	return nil
}

func readJSONL(r io.Reader) ([]ManifestEntry, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxManifestLine)
	var out []ManifestEntry
	for line := 1; sc.Scan(); line++ {
		b := strings.TrimSpace(sc.Text())
		if b == "" || strings.HasPrefix(b, "#") {
			continue
		}
		var e ManifestEntry
		if err := json.Unmarshal([]byte(b), &e); err != nil {
			return nil, fmt.Errorf("line %d: %v: each line must be a JSON object with path, instrument, pack, bpm, key (and optionally split)", line, err)
		}
		if err := checkEntry(&e, fmt.Sprintf("line %d", line)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than %d bytes: is this really a JSONL manifest?", maxManifestLine)
		}
		return nil, err
	}
	return out, nil
}

func readCSV(r io.Reader) ([]ManifestEntry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("read header: %w: the first row must name the columns (path,instrument,pack,bpm,key)", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["path"]; !ok {
		return nil, fmt.Errorf("header %q has no path column: name the columns path,instrument,pack,bpm,key", strings.Join(header, ","))
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var out []ManifestEntry
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		e := ManifestEntry{Path: get(rec, "path"), Instrument: get(rec, "instrument"), Pack: get(rec, "pack"), Key: get(rec, "key"), Split: get(rec, "split")}
		if s := get(rec, "bpm"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: bpm %q is not a number", line, s)
			}
			e.BPM = v
		}
		if err := checkEntry(&e, fmt.Sprintf("line %d", line)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
