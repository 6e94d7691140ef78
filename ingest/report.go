package ingest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Report is what one ingest run did, file by file where it matters. It is safe for
// concurrent use while the run is going; read it after Run returns.
type Report struct {
	mu sync.Mutex

	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Store    string    `json:"store,omitempty"`
	Bundle   string    `json:"bundle,omitempty"`
	// Interrupted is true when the run was stopped (Ctrl-C) before walking everything;
	// everything counted as ingested is stored.
	Interrupted bool `json:"interrupted"`

	Seen           int            `json:"seen"`
	Ingested       int            `json:"ingested"`
	AlreadyPresent int            `json:"already_present"`
	Duplicates     int            `json:"duplicates"`
	Skipped        int            `json:"skipped"`
	Failed         int            `json:"failed"`
	ByInstrument   map[string]int `json:"ingested_by_instrument"`

	// FromAudio counts, by instrument, the loops whose instrument the bundle's classifier
	// decided (their names and manifest did not say); they are stored, or in SkippedFiles
	// with other-instrument or uncertain-instrument.
	FromAudio map[string]int `json:"instrument_from_audio"`
	// Checked counts named loops the classifier also heard; Disagreements lists those
	// whose audio it heard, confidently, as another instrument than the name's (the name
	// still decides where they are stored).
	Checked       int            `json:"instrument_checked"`
	Disagreements []Disagreement `json:"instrument_disagreements"`

	// BPMSources and KeySources count the stored loops by where their tempo and key came
	// from: manifest, name, audio, or unknown (no estimate: a drum loop's key, a loop
	// too short or silent to time).
	BPMSources map[string]int `json:"bpm_sources"`
	KeySources map[string]int `json:"key_sources"`

	// Scored counts, by instrument, the stored loops the bundle's anomaly model scored;
	// Anomalous those it flagged (loopmatch audit lists them).
	Scored    map[string]int `json:"anomaly_scored"`
	Anomalous map[string]int `json:"anomalous"`

	// Embedded counts the rows written to each embedder collection (ingest --embedders),
	// for loops ingested now and for stored loops that lacked them.
	Embedded map[string]int `json:"embedded,omitempty"`
	// OneShotKinds counts the stored one-shots by kind (loopid.UnknownKind: neither the
	// name nor the kind classifier could tell); OneShotKindSources by where it came from.
	OneShotKinds       map[string]int `json:"oneshot_kinds,omitempty"`
	OneShotKindSources map[string]int `json:"oneshot_kind_sources,omitempty"`

	// SkippedFiles says why each file was left out (not audio, unknown instrument).
	SkippedFiles []FileNote `json:"skipped_files"`
	// Failures says why each broken file could not be ingested.
	Failures []FileNote `json:"failures"`
}

// Disagreement is a named loop that the classifier hears as another instrument.
type Disagreement struct {
	Path       string  `json:"path"`
	Named      string  `json:"named"` // what the name, manifest or --instrument said (and decided)
	Audio      string  `json:"audio"` // what the classifier heard
	Confidence float64 `json:"confidence"`
}

// FileNote is one file and what happened to it: Code is stable, for programs to switch
// on (see the Code constants); Reason is for people.
type FileNote struct {
	Path   string `json:"path"`
	Code   Code   `json:"code"`
	Reason string `json:"reason"`
}

// Code names why a file was skipped or failed. The values are stable.
type Code string

// Codes of skipped files.
const (
	CodeNotAudio          Code = "not-audio"
	CodeUnknownInstrument Code = "unknown-instrument"
	CodeNoEncoder         Code = "no-encoder"
	// The name did not say, and the classifier heard neither drums nor bass.
	CodeOtherInstrument Code = "other-instrument"
	// The name did not say, and the classifier was not sure enough.
	CodeUncertainInstrument Code = "uncertain-instrument"
)

// Codes of failed files.
const (
	CodeEmpty          Code = "empty-file"
	CodeUnreadable     Code = "unreadable"
	CodeUnsupported    Code = "unsupported-audio"
	CodeCorrupt        Code = "corrupt-audio"
	CodeTruncated      Code = "truncated-audio"
	CodeTooLarge       Code = "too-large"
	CodeTooLong        Code = "too-long"
	CodeTooShort       Code = "too-short"
	CodeSilent         Code = "silent"
	CodeNonFinite      Code = "non-finite"
	CodeEncodeFailed   Code = "encode-failed"
	CodeClassifyFailed Code = "classify-failed"
	CodeStoreFailed    Code = "store-failed"
	CodeBundleMismatch Code = "bundle-mismatch"
	CodeUploadsFull    Code = "uploads-full"
	CodeFailed         Code = "failed"
)

// fileError is a failure that carries its code; errors of the audio package get
// theirs from their sentinel (CodeOf).
type fileError struct {
	code Code
	err  error
}

func (e *fileError) Error() string { return e.err.Error() }
func (e *fileError) Unwrap() error { return e.err }

func failWith(code Code, err error) error { return &fileError{code, err} }

// CodeOf is the stable code of a file's failure.
func CodeOf(err error) Code {
	var fe *fileError
	if errors.As(err, &fe) {
		return fe.code
	}
	for _, c := range []struct {
		sentinel error
		code     Code
	}{
		{audio.ErrUnsupported, CodeUnsupported}, {audio.ErrCorrupt, CodeCorrupt}, {audio.ErrTruncated, CodeTruncated},
		{audio.ErrTooLarge, CodeTooLarge}, {audio.ErrTooLong, CodeTooLong}, {audio.ErrTooShort, CodeTooShort},
		{audio.ErrSilent, CodeSilent}, {audio.ErrNonFinite, CodeNonFinite},
		{vectordb.ErrEncoderMismatch, CodeBundleMismatch}, {vectordb.ErrDimensionMismatch, CodeBundleMismatch},
		{ErrUploadsFull, CodeUploadsFull},
	} {
		if errors.Is(err, c.sentinel) {
			return c.code
		}
	}
	return CodeFailed
}

func newReport(store, bundle string) *Report {
	return &Report{Started: time.Now().UTC(), Store: store, Bundle: bundle, ByInstrument: map[string]int{},
		FromAudio: map[string]int{}, BPMSources: map[string]int{}, KeySources: map[string]int{}, Scored: map[string]int{}, Anomalous: map[string]int{}, Disagreements: []Disagreement{}, SkippedFiles: []FileNote{}, Failures: []FileNote{}}
}

func (r *Report) seen() {
	r.mu.Lock()
	r.Seen++
	r.mu.Unlock()
}

func (r *Report) skip(path string, s *skipReason) {
	r.mu.Lock()
	r.Skipped++
	r.SkippedFiles = append(r.SkippedFiles, FileNote{path, s.code, s.text})
	r.mu.Unlock()
}

func (r *Report) fail(path string, err error) {
	r.mu.Lock()
	r.Failed++
	r.Failures = append(r.Failures, FileNote{path, CodeOf(err), err.Error()})
	r.mu.Unlock()
}

// skipReason is why a file is left out, with its code.
type skipReason struct {
	code Code
	text string
}

func (r *Report) classified(instrument string) {
	r.mu.Lock()
	r.FromAudio[instrument]++
	r.mu.Unlock()
}

// checked notes a named loop's label; a confident label that is not the name's
// instrument is a disagreement.
func (r *Report) checked(path, named string, l onnx.Label) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Checked++
	if l.Sure && l.Class != named {
		r.Disagreements = append(r.Disagreements, Disagreement{Path: path, Named: named, Audio: l.Class, Confidence: math.Round(l.Confidence*1000) / 1000})
	}
}

// health counts a stored loop's anomaly score and flag.
func (r *Report) health(inst string, h vectordb.Health) {
	if h.AnomalyModel == "" {
		return
	}
	r.mu.Lock()
	r.Scored[inst]++
	if h.Anomalous {
		r.Anomalous[inst]++
	}
	r.mu.Unlock()
}

// sources counts a stored loop's tempo and key sources.
func (r *Report) sources(m Meta) {
	r.mu.Lock()
	r.BPMSources[cmp.Or(m.BPMSource, "unknown")]++
	r.KeySources[cmp.Or(m.KeySource, "unknown")]++
	r.mu.Unlock()
}

func (r *Report) oneShot(m Meta) {
	r.mu.Lock()
	if r.OneShotKinds == nil {
		r.OneShotKinds, r.OneShotKindSources = map[string]int{}, map[string]int{}
	}
	r.OneShotKinds[m.Kind]++
	r.OneShotKindSources[cmp.Or(m.KindSource, "unknown")]++
	r.mu.Unlock()
}

func (r *Report) present(n int) {
	r.mu.Lock()
	r.AlreadyPresent += n
	r.mu.Unlock()
}

func (r *Report) embedded(collection string, n int) {
	r.mu.Lock()
	if r.Embedded == nil {
		r.Embedded = map[string]int{}
	}
	r.Embedded[collection] += n
	r.mu.Unlock()
}

func (r *Report) duplicate() {
	r.mu.Lock()
	r.Duplicates++
	r.mu.Unlock()
}

func (r *Report) ingested(instrument string, n int) {
	r.mu.Lock()
	r.Ingested += n
	r.ByInstrument[instrument] += n
	r.mu.Unlock()
}

// Snapshot returns the running counts (for progress display).
func (r *Report) Snapshot() (seen, done, present, skipped, failed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.Seen, r.Ingested, r.AlreadyPresent + r.Duplicates, r.Skipped, r.Failed
}

func (r *Report) finish(interrupted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Finished = time.Now().UTC()
	r.Interrupted = interrupted
	sort.Slice(r.Failures, func(i, j int) bool { return r.Failures[i].Path < r.Failures[j].Path })
	sort.Slice(r.SkippedFiles, func(i, j int) bool { return r.SkippedFiles[i].Path < r.SkippedFiles[j].Path })
	sort.Slice(r.Disagreements, func(i, j int) bool { return r.Disagreements[i].Path < r.Disagreements[j].Path })
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteFile writes the JSON report to path atomically (temp file, then rename), so a
// reader never sees half a report.
func (r *Report) WriteFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*.json")
	if err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := r.WriteJSON(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write report %s: %w", path, err)
	}
	return nil
}

// Summary is the human-readable tally printed on exit.
func (r *Report) Summary() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	d := r.Finished.Sub(r.Started)
	rate := 0.0
	if d > 0 {
		rate = float64(r.Ingested) / d.Seconds()
	}
	fmt.Fprintf(&b, "ingest: %d files seen in %s: %d ingested (%.1f loops/s), %d already present, %d duplicates, %d skipped, %d failed",
		r.Seen, d.Round(time.Millisecond), r.Ingested, rate, r.AlreadyPresent, r.Duplicates, r.Skipped, r.Failed)
	if len(r.ByInstrument) > 0 {
		keys := make([]string, 0, len(r.ByInstrument))
		for k := range r.ByInstrument {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.ByInstrument[k])
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(parts, ", "))
	}
	if n := sumCounts(r.FromAudio); n > 0 || r.Checked > 0 {
		fmt.Fprintf(&b, "\ningest: instrument from the audio for %d loops whose names did not say %v; %d named loops checked, %d heard as another instrument (see --report)",
			n, r.FromAudio, r.Checked, len(r.Disagreements))
	}
	if r.Ingested > sumCounts(r.OneShotKinds) { // one-shots have no tempo or key
		fmt.Fprintf(&b, "\ningest: tempo from %s; key from %s", sourceCounts(r.BPMSources), sourceCounts(r.KeySources))
	}
	if n := sumCounts(r.OneShotKinds); n > 0 {
		fmt.Fprintf(&b, "\ningest: %d one-shots by kind %v (kind from %s); %d of unknown kind: name them (kick, snare, hh, ...) to filter them by kind", n, r.OneShotKinds, sourceCounts(r.OneShotKindSources), r.OneShotKinds["unknown"])
	}
	if n := sumCounts(r.Scored); n > 0 {
		fmt.Fprintf(&b, "\ningest: anomaly scores for %d loops, %d flagged anomalous %v (loopmatch audit lists them)", n, sumCounts(r.Anomalous), r.Anomalous)
	}
	if n := sumCounts(r.Embedded); n > 0 {
		fmt.Fprintf(&b, "\ningest: %d embedder rows %v", n, r.Embedded)
	}
	if r.Interrupted {
		b.WriteString("\ningest: interrupted: what is counted as ingested is stored; run the same command again to finish")
	}
	const show = 10
	for i, f := range r.Failures {
		if i == show {
			fmt.Fprintf(&b, "\n  ... and %d more failures (see --report)", len(r.Failures)-show)
			break
		}
		fmt.Fprintf(&b, "\n  failed: %s: %s (%s)", f.Path, f.Reason, f.Code)
	}
	return b.String()
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// sourceCounts: "manifest 3, name 10, audio 40, unknown 2", in that order.
func sourceCounts(m map[string]int) string {
	var parts []string
	for _, k := range []string{vectordb.SourceManifest, vectordb.SourceName, vectordb.SourceAudio, "unknown"} {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
