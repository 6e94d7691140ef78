package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
)

// Upload is one uploaded loop file.
type Upload struct {
	Filename string
	Data     []byte
}

// UploadMeta applies to every file of one POST /v1/loops.
type UploadMeta struct {
	Instrument string
	Pack       string
	BPM        float64
	Key        string
}

// UploadResult says what happened to one uploaded file.
type UploadResult struct {
	Filename string `json:"filename"`
	ID       string `json:"id,omitempty"`
	// Status is "stored" (ingested now or already present) or "failed".
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
	AudioURL string `json:"audio_url,omitempty"`
}

// Ingester stores uploaded loops in the instrument's collection. The server calls it
// for POST /v1/loops; without one that route answers 501.
type Ingester interface {
	Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error)
}

// DirIngester keeps uploads as files under Dir (content-addressed, so uploading a file
// twice stores it once) and runs them through ingest.Run: the same identification,
// decoding, encoding and upsert as `loopmatch ingest`.
type DirIngester struct {
	Dir string
	// Config is the ingest configuration (store, bundle, encoders); Rules and Manifest
	// are set per upload.
	Config ingest.Config
}

// Ingest implements Ingester.
func (d *DirIngester) Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error) {
	if _, ok := d.Config.Encoders[meta.Instrument]; !ok {
		return nil, fmt.Errorf("%w: the bundle has no %s encoder, so %s loops cannot be stored", ErrInvalid, meta.Instrument, meta.Instrument)
	}
	dir := filepath.Join(d.Dir, meta.Instrument)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("uploads folder: %w (check --uploads-dir is writable)", err)
	}
	results := make([]UploadResult, len(files))
	var paths []string
	var entries []ingest.ManifestEntry
	byPath := map[string]int{}
	for i, f := range files {
		results[i] = UploadResult{Filename: f.Filename}
		ext := extension(audioTypes[audio.Sniff(f.Data)])
		if ext == "" {
			results[i].Status, results[i].Reason = "failed", "not a supported audio file (WAV, AIFF, FLAC or Ogg Vorbis, recognised by content)"
			continue
		}
		id, _ := ingest.ID(bytes.NewReader(f.Data))
		results[i].ID = id
		p := filepath.Join(dir, id+ext)
		if err := writeAtomic(p, f.Data); err != nil {
			return nil, err
		}
		e := ingest.ManifestEntry{Path: p, Instrument: meta.Instrument, Pack: meta.Pack, BPM: meta.BPM, Key: meta.Key}
		// What the person did not say may be in the file's original name ("Am_128bpm").
		if e.BPM == 0 {
			e.BPM = ingest.ParseBPM(f.Filename)
		}
		if e.Key == "" {
			e.Key = ingest.ParseKey(f.Filename)
		}
		if e.Pack == "" {
			e.Pack = "uploads"
		}
		if _, dup := byPath[p]; !dup {
			paths = append(paths, p)
			entries = append(entries, e)
		}
		byPath[p] = i
	}
	if len(paths) == 0 {
		return results, nil
	}
	tmp, err := os.MkdirTemp("", "loopmatch-upload-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var man bytes.Buffer
	enc := json.NewEncoder(&man)
	for _, e := range entries {
		_ = enc.Encode(e)
	}
	mpath := filepath.Join(tmp, "manifest.jsonl")
	if err := os.WriteFile(mpath, man.Bytes(), 0o600); err != nil {
		return nil, err
	}
	m, err := ingest.LoadManifest(mpath)
	if err != nil {
		return nil, fmt.Errorf("upload metadata: %w", err)
	}
	cfg := d.Config
	cfg.Manifest = m
	cfg.Rules = ingest.DefaultRules()
	cfg.Rules.Instrument = meta.Instrument
	cfg.Progress = nil
	rep, err := ingest.Run(ctx, cfg, paths)
	if err != nil {
		return nil, err
	}
	failed := map[string]string{}
	for _, n := range append(rep.Failures, rep.SkippedFiles...) {
		failed[n.Path] = n.Reason
	}
	for i := range results {
		if results[i].Status != "" {
			continue
		}
		p := filepath.Join(dir, results[i].ID+extension(audioTypes[audio.Sniff(files[i].Data)]))
		if reason, bad := failed[p]; bad {
			results[i].Status, results[i].Reason = "failed", reason
			continue
		}
		results[i].Status, results[i].AudioURL = "stored", audioURL(meta.Instrument, results[i].ID)
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

// ParseUpload reads a POST /v1/loops multipart body: fields instrument (required),
// pack, bpm, key, and one or more "file" parts.
func ParseUpload(r *http.Request, maxFile int64, maxFiles int) (UploadMeta, []Upload, error) {
	var meta UploadMeta
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return meta, nil, &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type",
			"upload loops as multipart/form-data: field \"instrument\" and one or more \"file\" parts"}
	}
	if params["boundary"] == "" {
		return meta, nil, badRequest("multipart/form-data needs a boundary parameter in Content-Type")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var files []Upload
	fields := map[string]string{}
	for n := 0; ; n++ {
		if n > maxFiles+8 {
			return meta, nil, badRequest("too many parts: at most %d files and the fields instrument, pack, bpm, key", maxFiles)
		}
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return meta, nil, tooLarge(mbe.Limit)
			}
			return meta, nil, badRequest("the multipart body does not parse: %v", err)
		}
		switch name := p.FormName(); name {
		case "file":
			if len(files) == maxFiles {
				return meta, nil, &apiError{http.StatusRequestEntityTooLarge, "payload-too-large", fmt.Sprintf("more than %d files in one upload: split it", maxFiles)}
			}
			data, err := readBounded(p, maxFile)
			if err != nil {
				return meta, nil, err
			}
			if len(data) == 0 {
				return meta, nil, badRequest("file part %q is empty", clip(p.FileName()))
			}
			files = append(files, Upload{Filename: filepath.Base(p.FileName()), Data: data})
		case "instrument", "pack", "bpm", "key":
			if _, dup := fields[name]; dup {
				return meta, nil, badRequest("field %q is given twice", name)
			}
			v, err := readBounded(p, 256)
			if err != nil {
				return meta, nil, badRequest("field %q is longer than 256 bytes", name)
			}
			fields[name] = strings.TrimSpace(string(v))
		default:
			return meta, nil, badRequest("unknown part %q: send instrument, pack, bpm, key and \"file\" parts", clip(name))
		}
	}
	if meta.Instrument, err = checkInstrument("instrument", fields["instrument"]); err != nil {
		return meta, nil, err
	}
	if v := fields["pack"]; v != "" {
		if _, err := checkPacks("pack", []string{v}); err != nil {
			return meta, nil, err
		}
		meta.Pack = v
	}
	if v := fields["bpm"]; v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > maxBPM {
			return meta, nil, invalidParam("bpm %q: give a tempo between 1 and %d, or leave it out", clip(v), maxBPM)
		}
		meta.BPM = f
	}
	if v := fields["key"]; v != "" {
		k, err := checkKeys([]string{v})
		if err != nil {
			return meta, nil, err
		}
		meta.Key = k[0]
	}
	if len(files) == 0 {
		return meta, nil, badRequest("no \"file\" part: attach the loops as form files named \"file\"")
	}
	return meta, files, nil
}

func (s *Server) uploadLoops(c *gin.Context) {
	if s.cfg.Ingester == nil {
		writeProblem(c, http.StatusNotImplemented, "not-implemented",
			"this server does not accept uploads: start it with --uploads-dir to store uploaded loops, or run `loopmatch ingest PATH`")
		return
	}
	meta, files, err := ParseUpload(c.Request, s.cfg.MaxUploadBytes, s.cfg.MaxUploadFiles)
	if err != nil {
		s.fail(c, err)
		return
	}
	if !s.engine.HasEncoder(meta.Instrument) {
		writeProblem(c, http.StatusUnprocessableEntity, "invalid-parameters",
			fmt.Sprintf("the bundle has no %s encoder: upload loops of %s", meta.Instrument, strings.Join(s.encoderInstruments(), ", ")))
		return
	}
	for _, f := range files {
		s.metrics.uploadSize.Observe(float64(len(f.Data)))
	}
	results, err := s.cfg.Ingester.Ingest(c.Request.Context(), meta, files)
	s.engine.Forget()
	if err != nil {
		s.fail(c, err)
		return
	}
	status := http.StatusOK
	for _, r := range results {
		if r.Status == "stored" {
			status = http.StatusCreated
		}
	}
	c.JSON(status, gin.H{"request_id": requestID(c), "instrument": meta.Instrument, "results": results})
}

func (s *Server) encoderInstruments() []string {
	var out []string
	for _, i := range s.instruments() {
		if s.engine.HasEncoder(i) {
			out = append(out, i)
		}
	}
	return out
}
