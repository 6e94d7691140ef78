package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Upload is one uploaded loop file.
type Upload struct {
	Filename string
	Data     []byte
}

// UploadMeta applies to every file of one upload.
type UploadMeta struct {
	Instrument string
	Pack       string
	BPM        float64
	Key        string
}

// UploadResult says what happened to one uploaded file.
type UploadResult struct {
	Filename string
	ID       string
	// Stored is true when the loop was ingested now or was already present; otherwise
	// Code and Reason say why not. Reason never names a server path.
	Stored bool
	Code   Code
	Reason string
}

// ErrUploadsFull: storing the upload would take the uploads folder over its quota.
var ErrUploadsFull = errors.New("the uploads folder is full")

// Uploads keeps uploaded loops as files under Dir (content-addressed, so uploading a
// file twice stores it once) and runs them through Run: the same identification,
// decoding, encoding and upsert as `loopmatch ingest`.
type Uploads struct {
	Dir string
	// MaxBytes bounds the bytes under Dir (0: no bound); an upload that would pass it is
	// refused whole with ErrUploadsFull.
	MaxBytes int64
	// Config is the ingest configuration (store, bundle, encoders); Rules and Manifest
	// are set per upload.
	Config Config
	// Embedders are the bundle's embedders by instrument (every one it has): an upload
	// also fills those the library already holds (a collection of the same embedder with
	// rows, from ingest --embedders), so uploaded loops can be ranked by them as the
	// library's other loops are. The others stay unfilled, as an ingest without
	// --embedders leaves them.
	Embedders map[string][]*onnx.Embedder

	// mu runs one upload at a time: two uploads of the same bytes share one file, and
	// one's clean-up must not remove it under the other's ingest. Each ingest already
	// uses every worker, so nothing is lost.
	mu sync.Mutex
}

// Ingest stores one upload's files in the instrument's collection. It returns an
// error only when nothing could be done; a file that fails has its reason in its result.
func (u *Uploads) Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error) {
	if _, ok := u.Config.Encoders[meta.Instrument]; !ok {
		return nil, fmt.Errorf("the bundle has no %s encoder, so %s loops cannot be stored: upload loops of an instrument the bundle encodes", meta.Instrument, meta.Instrument)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	dir := filepath.Join(u.Dir, meta.Instrument)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("uploads folder: %w (check --uploads-dir is writable)", err)
	}
	if err := u.checkQuota(files); err != nil {
		return nil, err
	}
	results := make([]UploadResult, len(files))
	paths := make([]string, len(files))
	var todo []string
	var entries []ManifestEntry
	// written are the files this upload created: a failed one is removed again, so
	// nothing that failed stays on disk; a file that was already there is left alone.
	written := map[string]bool{}
	seen := map[string]bool{}
	for i, f := range files {
		results[i] = UploadResult{Filename: f.Filename}
		ext := audio.Sniff(f.Data).Extension()
		if ext == "" {
			results[i].Code, results[i].Reason = CodeNotAudio, "not a supported audio file (WAV, AIFF, FLAC or Ogg Vorbis, recognised by content)"
			continue
		}
		id, err := loopid.ID(bytes.NewReader(f.Data))
		if err != nil {
			return nil, err
		}
		results[i].ID = id
		p := filepath.Join(dir, id+ext)
		paths[i] = p
		if seen[p] {
			continue
		}
		seen[p] = true
		created, err := writeAtomic(p, f.Data)
		if err != nil {
			u.removeAll(written)
			return nil, err
		}
		written[p] = created
		e := ManifestEntry{Path: p, Instrument: meta.Instrument, Pack: meta.Pack, BPM: meta.BPM, Key: meta.Key}
		// What the person did not say may be in the file's original name ("Am_128bpm").
		if e.BPM == 0 {
			e.BPM, e.bpmSource = ParseBPM(f.Filename), vectordb.SourceName
		}
		if e.Key == "" {
			e.Key, e.keySource = loopid.ParseKey(f.Filename), vectordb.SourceName
		}
		if e.Pack == "" {
			e.Pack = "uploads"
		}
		todo = append(todo, p)
		entries = append(entries, e)
	}
	if len(todo) == 0 {
		return results, nil
	}
	m, err := NewManifest(entries)
	if err != nil {
		u.removeAll(written)
		return nil, fmt.Errorf("upload metadata: %w", err)
	}
	cfg := u.Config
	if cfg.Embedders, err = heldEmbedders(ctx, cfg, meta.Instrument, u.Embedders[meta.Instrument]); err != nil {
		u.removeAll(written)
		return nil, err
	}
	cfg.Manifest = m
	cfg.Rules = DefaultRules()
	cfg.Rules.Instrument = meta.Instrument
	cfg.Progress = nil
	rep, err := Run(ctx, cfg, todo)
	if err != nil {
		u.removeAll(written)
		return nil, err
	}
	failed := map[string]FileNote{}
	for _, n := range append(rep.Failures, rep.SkippedFiles...) {
		failed[n.Path] = n
	}
	for i := range results {
		p := paths[i]
		if p == "" {
			continue
		}
		n, bad := failed[p]
		if !bad {
			results[i].Stored = true
			continue
		}
		// The person knows the file by its own name; the server's folders are none of
		// their business.
		reason := strings.ReplaceAll(n.Reason, p, files[i].Filename)
		reason = strings.ReplaceAll(reason, u.Dir, "uploads")
		results[i].Code, results[i].Reason = n.Code, reason
		if written[p] {
			_ = os.Remove(p)
			written[p] = false
		}
	}
	return results, nil
}

// removeAll removes the files this upload created (after a failure of the whole upload).
func (u *Uploads) removeAll(written map[string]bool) {
	for p, created := range written {
		if created {
			_ = os.Remove(p)
		}
	}
}

// checkQuota refuses an upload that would take Dir over MaxBytes.
func (u *Uploads) checkQuota(files []Upload) error {
	if u.MaxBytes <= 0 {
		return nil
	}
	var adding int64
	for _, f := range files {
		adding += int64(len(f.Data))
	}
	var used int64
	err := filepath.WalkDir(u.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				used += info.Size()
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("measure the uploads folder: %w", err)
	}
	if used+adding > u.MaxBytes {
		return fmt.Errorf("%w: it holds %d bytes, this upload adds %d, the quota is %d: remove loops from it, or raise --uploads-max-mb", ErrUploadsFull, used, adding, u.MaxBytes)
	}
	return nil
}

// writeAtomic writes data under path through a temporary file, removed on any error;
// created is false when path already existed (content-addressed: the same bytes).
func writeAtomic(path string, data []byte) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return false, fmt.Errorf("store upload: %w (check --uploads-dir is writable)", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return false, fmt.Errorf("store upload: %w", err)
	}
	if err = f.Close(); err != nil {
		return false, fmt.Errorf("store upload: %w", err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return false, fmt.Errorf("store upload: %w", err)
	}
	return true, nil
}
