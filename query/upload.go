package query

import (
	"context"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
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
	Status string `json:"status"`
	// Code is a failure's stable code (ingest's: "silent", "truncated-audio", ...);
	// Reason says it for people.
	Code     string `json:"code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	AudioURL string `json:"audio_url,omitempty"`
}

// ErrUploadsFull: an Ingester's storage for uploads is full; answered 507.
var ErrUploadsFull = errors.New("the uploads folder is full")

// Ingester stores uploaded loops in the instrument's collection. The server calls it
// for POST /v1/loops; without one that route answers 501. The command wires the
// write side (ingest) in here, so this package never imports it. Results come in the
// order of files, with Status and Reason set; the server adds AudioURL.
type Ingester interface {
	Ingest(ctx context.Context, meta UploadMeta, files []Upload) ([]UploadResult, error)
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
	form, parts, err := readForm(r, params["boundary"], formLimits{files: map[string]int{"file": maxFiles},
		fileBytes: maxFile, fieldBytes: 256, fields: []string{"instrument", "pack", "bpm", "key"}, maxParts: maxFiles + 8, queryOK: true})
	if err != nil {
		return meta, nil, err
	}
	fields := map[string]string{}
	for name, vs := range form {
		if len(vs) > 1 {
			return meta, nil, badRequest("field %q is given twice", name)
		}
		fields[name] = strings.TrimSpace(vs[0])
	}
	files := make([]Upload, len(parts))
	for i, p := range parts {
		files[i] = Upload{Filename: filepath.Base(p.filename), Data: p.data}
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
		if err != nil || math.IsNaN(f) || f < 1 || f > maxBPM {
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
			fmt.Sprintf("the bundle has no %s encoder: upload loops of %s", meta.Instrument, strings.Join(s.engine.InstrumentsWith(s.engine.HasEncoder), ", ")))
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
	for i, r := range results {
		if r.Status == "stored" {
			status = http.StatusCreated
			results[i].AudioURL = audioURL(meta.Instrument, r.ID)
		}
	}
	c.JSON(status, gin.H{"request_id": requestID(c), "instrument": meta.Instrument, "results": results})
}
