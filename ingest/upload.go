package ingest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
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
	// Reason says why not.
	Stored bool
	Reason string
}

// Uploads keeps uploaded loops as files under Dir (content-addressed, so uploading a
// file twice stores it once) and runs them through Run: the same identification,
// decoding, encoding and upsert as `loopmatch ingest`.
type Uploads struct {
	Dir string
	// Config is the ingest configuration (store, bundle, encoders); Rules and Manifest
	// are set per upload.
	Config Config
}

// Ingest stores one upload's files in the instrument's collection. It returns an
// error only when nothing could be done; a file that fails has its reason in its result.
func (u *Uploads) Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error) {
	if _, ok := u.Config.Encoders[meta.Instrument]; !ok {
		return nil, fmt.Errorf("the bundle has no %s encoder, so %s loops cannot be stored: upload loops of an instrument the bundle encodes", meta.Instrument, meta.Instrument)
	}
	dir := filepath.Join(u.Dir, meta.Instrument)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("uploads folder: %w (check --uploads-dir is writable)", err)
	}
	results := make([]UploadResult, len(files))
	paths := make([]string, len(files))
	var todo []string
	var entries []ManifestEntry
	seen := map[string]bool{}
	for i, f := range files {
		results[i] = UploadResult{Filename: f.Filename}
		ext := audio.Sniff(f.Data).Extension()
		if ext == "" {
			results[i].Reason = "not a supported audio file (WAV, AIFF, FLAC or Ogg Vorbis, recognised by content)"
			continue
		}
		id, err := loopid.ID(bytes.NewReader(f.Data))
		if err != nil {
			return nil, err
		}
		results[i].ID = id
		p := filepath.Join(dir, id+ext)
		paths[i] = p
		if err := writeAtomic(p, f.Data); err != nil {
			return nil, err
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		e := ManifestEntry{Path: p, Instrument: meta.Instrument, Pack: meta.Pack, BPM: meta.BPM, Key: meta.Key}
		// What the person did not say may be in the file's original name ("Am_128bpm").
		if e.BPM == 0 {
			e.BPM = ParseBPM(f.Filename)
		}
		if e.Key == "" {
			e.Key = loopid.ParseKey(f.Filename)
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
		return nil, fmt.Errorf("upload metadata: %w", err)
	}
	cfg := u.Config
	cfg.Manifest = m
	cfg.Rules = DefaultRules()
	cfg.Rules.Instrument = meta.Instrument
	cfg.Progress = nil
	rep, err := Run(ctx, cfg, todo)
	if err != nil {
		return nil, err
	}
	failed := map[string]string{}
	for _, n := range append(rep.Failures, rep.SkippedFiles...) {
		failed[n.Path] = n.Reason
	}
	for i := range results {
		if paths[i] == "" {
			continue
		}
		if reason, bad := failed[paths[i]]; bad {
			results[i].Reason = reason
			continue
		}
		results[i].Stored = true
	}
	return results, nil
}

func writeAtomic(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil // content-addressed: the same name holds the same bytes
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("store upload: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store upload: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store upload: %w", err)
	}
	return nil
}
