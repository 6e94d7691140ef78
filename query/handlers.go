package query

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// LoopJSON is a stored loop as the API shows it: never its file path, which is the
// server's business.
type LoopJSON struct {
	ID         string    `json:"id"`
	Instrument string    `json:"instrument"`
	Pack       string    `json:"pack"`
	BPM        float64   `json:"bpm"`
	Key        string    `json:"key"`
	Duration   float64   `json:"duration"`
	SampleRate int       `json:"sample_rate,omitempty"`
	IngestedAt time.Time `json:"ingested_at,omitzero"`
	AudioURL   string    `json:"audio_url"`
	Provenance
	Health *LoopHealth `json:"health,omitempty"`
}

// LoopHealth is a loop's stored anomaly score, its flag, and the likely causes the
// simple checks and the loop's length name (vectordb.Row.Causes); absent for a loop never
// scored.
type LoopHealth struct {
	AnomalyScore float64  `json:"anomaly_score"`
	Anomalous    bool     `json:"anomalous"`
	Causes       []string `json:"causes"`
}

func loopHealth(r *vectordb.Row) *LoopHealth {
	if r.AnomalyModel == "" {
		return nil
	}
	return &LoopHealth{AnomalyScore: r.AnomalyScore, Anomalous: r.Anomalous, Causes: r.Causes()}
}

// Provenance is where a loop's tempo, key and instrument came from (manifest, name,
// audio or flag; absent when unknown) and how sure the audio estimates are.
type Provenance struct {
	BPMSource        string  `json:"bpm_source,omitempty"`
	BPMConfidence    float64 `json:"bpm_confidence,omitempty"`
	KeySource        string  `json:"key_source,omitempty"`
	KeyConfidence    float64 `json:"key_confidence,omitempty"`
	InstrumentSource string  `json:"instrument_source,omitempty"`
	// Kind is a one-shot's kind (absent for loops), with its source and confidence.
	Kind           string  `json:"kind,omitempty"`
	KindSource     string  `json:"kind_source,omitempty"`
	KindConfidence float64 `json:"kind_confidence,omitempty"`
}

func provenance(r *vectordb.Row) Provenance {
	return Provenance{BPMSource: r.BPMSource, BPMConfidence: r.BPMConfidence, KeySource: r.KeySource,
		KeyConfidence: r.KeyConfidence, InstrumentSource: r.InstrumentSource, Kind: r.Kind, KindSource: r.KindSource, KindConfidence: r.KindConfidence}
}

// RankedLoop is one recommendation.
type RankedLoop struct {
	ID       string  `json:"id"`
	Rank     int     `json:"rank"`
	Score    float32 `json:"score"`
	Pack     string  `json:"pack"`
	BPM      float64 `json:"bpm"`
	Key      string  `json:"key"`
	Duration float64 `json:"duration"`
	AudioURL string  `json:"audio_url"`
	// Name is the file's name, without its folder (the page shows it).
	Name string `json:"name,omitempty"`
	Provenance
	Health *LoopHealth `json:"health,omitempty"`
	// AnnScore and AnnRank are the cosine search's score and place (the first stage);
	// HubScore the loop's hub score when the first stage was hubness-corrected (its
	// first-stage score is then AnnScore minus beta times it);
	// PairScore the scorer's logit when the loop was reranked; Stage which of the two
	// put it where it is ("ann" or "rerank"); Note why a loop among the reranked N has no
	// pair score.
	AnnScore  float32  `json:"ann_score"`
	AnnRank   int      `json:"ann_rank"`
	HubScore  *float32 `json:"hub_score,omitempty"`
	PairScore *float32 `json:"pair_score,omitempty"`
	Stage     string   `json:"stage"`
	Note      string   `json:"note,omitempty"`
	// WindowOffset is where the window that matched best starts, in seconds into the
	// loop (0 for loops no longer than the model's window): the page starts playback there.
	WindowOffset float64 `json:"window_offset"`
}

// RerankJSON says what the bundle's second stage offers: whether it can rerank at all,
// for which pairs, whether recommend reranks when a request does not say, and its N.
type RerankJSON struct {
	Available bool     `json:"available"`
	Pairs     []string `json:"pairs"`
	Default   bool     `json:"default"`
	N         int      `json:"n"`
}

// HubJSON says what the bundle's first-stage hubness correction is: whether it has one,
// whether recommend corrects when a request does not say, and its k and beta.
type HubJSON struct {
	Available bool    `json:"available"`
	Default   bool    `json:"default"`
	K         int     `json:"k,omitempty"`
	Beta      float64 `json:"beta,omitempty"`
}

// RecommendResponse is the body of a successful POST /v1/recommend.
type RecommendResponse struct {
	RequestID string         `json:"request_id"`
	Bundle    string         `json:"bundle"`
	From      string         `json:"from"`
	To        string         `json:"to"`
	Seed      recommend.Seed `json:"seed"`
	Results   []RankedLoop   `json:"results"`
	// Rerank says whether the second stage ranked the results.
	Rerank recommend.RerankInfo `json:"rerank"`
	// Hub says whether the first stage was hubness-corrected.
	Hub recommend.HubInfo `json:"hub"`
	// PreviewURL plays the decoded predicted loop; set when preview was asked for.
	PreviewURL string `json:"preview_url,omitempty"`
	// PreviewAvailable is false when the bundle has no decoder for the target
	// instrument: the URL then answers 501 saying so.
	PreviewAvailable *bool `json:"preview_available,omitempty"`
	// Filter is the tempo and key filter as resolved against the seed (set when there
	// is one): the tempo ranges and keys a loop had to have.
	Filter *recommend.Applied `json:"filter,omitempty"`
	// ExcludedUnknown counts the loops the tempo or key filter left out because that
	// field is unknown (set when such a filter left unknowns out).
	ExcludedUnknown *recommend.ExcludedUnknown `json:"excluded_unknown,omitempty"`
}

func audioURL(instrument, id string) string { return "/v1/loops/" + instrument + "/" + id + "/audio" }

func (s *Server) recommend(c *gin.Context) {
	q, cq, err := parseRecommendRequest(c.Request, s.cfg.MaxUploadBytes)
	if err != nil {
		s.fail(c, err)
		return
	}
	if cq != nil {
		s.recommendContext(c, cq)
		return
	}
	req := q.Request
	if q.Upload != nil {
		s.metrics.uploadSize.Observe(float64(len(q.Upload)))
		// Check the pair before decoding: a wrong instrument (or a rerank the bundle cannot
		// do) should not cost a decode.
		err := s.engine.Validate(&recommend.Request{SeedAudio: []float32{}, From: req.From, To: req.To, K: max(req.K, 1), MMRLambda: req.MMRLambda,
			Rerank: req.Rerank, RerankN: req.RerankN, Hub: req.Hub})
		if errors.Is(err, recommend.ErrNoMapper) || errors.Is(err, recommend.ErrNoScorer) || errors.Is(err, recommend.ErrNoHubness) {
			s.fail(c, err)
			return
		}
		if req.SeedAudio, req.SeedAudioID, req.SeedDuration, err = s.uploadedSeed(q.Upload, req.SeedOffset); err != nil {
			s.fail(c, err)
			return
		}
	}
	resp, err := s.engine.Recommend(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := RecommendResponse{RequestID: requestID(c), Bundle: resp.BundleID, From: resp.Pair.From, To: resp.Pair.To,
		Seed: resp.Seed, ExcludedUnknown: resp.ExcludedUnknown, Rerank: resp.Rerank, Hub: resp.Hub}
	if ap := resp.Applied; ap.BPMRanges != nil || ap.Keys != nil {
		out.Filter = &ap
	}
	out.Results = rankedLoops(resp.Pair.To, resp.Results)
	if q.Preview {
		key := previewKey(resp.BundleID, resp.Pair.To, resp.Mapped)
		s.latents.Add(key, previewLatent{instrument: resp.Pair.To, z: resp.Mapped})
		ok := s.engine.HasDecoder(resp.Pair.To)
		out.PreviewURL, out.PreviewAvailable = "/v1/previews/"+key+".wav", &ok
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// uploadedSeed decodes an uploaded seed's window at offset seconds, bounded by the
// server's upload limits, with the file's id and length in seconds.
func (s *Server) uploadedSeed(upload []byte, offset float64) ([]float32, string, float64, error) {
	lim := audio.Limits{MaxFileBytes: s.cfg.MaxUploadBytes, MaxDuration: s.cfg.MaxUploadDuration}
	pcm, info, err := audio.LoadBytesFrom(upload, s.engine.AudioOptions(lim), offset)
	if err != nil {
		return nil, "", 0, fmt.Errorf("the uploaded seed: %w", err)
	}
	id, _ := loopid.ID(bytes.NewReader(upload))
	return pcm, id, info.Duration.Seconds(), nil
}

// rankedLoops is the API's form of an engine's ranked loops of the instrument.
func rankedLoops(instrument string, rs []recommend.Result) []RankedLoop {
	out := make([]RankedLoop, len(rs))
	for i, r := range rs {
		out[i] = RankedLoop{ID: r.ID, Rank: r.Rank, Score: r.Score, Pack: r.Pack, BPM: r.BPM, Key: r.Key,
			Duration: r.Duration, AudioURL: audioURL(instrument, r.ID), Name: loopName(r.Path), Provenance: provenance(&r.Row), Health: loopHealth(&r.Row),
			AnnScore: r.AnnScore, AnnRank: r.AnnRank, HubScore: r.HubScore, PairScore: r.PairScore, Stage: r.Stage, Note: r.Note,
			WindowOffset: r.WindowOffset}
	}
	return out
}

// previewKey identifies a predicted loop: the same mapped latent from the same bundle
// is the same audio, so repeated queries share one decoded preview.
func previewKey(bundle, instrument string, z []float32) string {
	h := sha256.New()
	io.WriteString(h, bundle)
	h.Write([]byte{0})
	io.WriteString(h, instrument)
	h.Write([]byte{0})
	var b [4]byte
	for _, v := range z {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) preview(c *gin.Context) {
	file := c.Param("file")
	key, ok := strings.CutSuffix(file, ".wav")
	if !ok || len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		writeProblem(c, http.StatusNotFound, "not-found", "a preview URL is /v1/previews/KEY.wav with the 64-hex KEY from the preview_url of a recommend, interpolate or transfer response")
		return
	}
	lat, ok := s.latents.Get(key)
	s.metrics.cacheResult("preview_latent", ok)
	if !ok {
		writeProblem(c, http.StatusNotFound, "not-found", "no such preview, or it has expired from the cache: send the request that gave the URL again (recommend with \"preview\": true, interpolate or transfer)")
		return
	}
	if !s.engine.HasDecoder(lat.instrument) {
		_, _, err := s.engine.Decode(c.Request.Context(), lat.instrument, nil)
		s.fail(c, err)
		return
	}
	wav, err := s.previewWAV(c.Request.Context(), key, lat)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "audio/wav")
	c.Header("Content-Disposition", `inline; filename="preview-`+key[:12]+`.wav"`)
	c.Header("ETag", `"`+key+`"`)
	c.Header("Cache-Control", "private, max-age=3600")
	c.Header("X-Content-Type-Options", "nosniff")
	serveContent(c, time.Time{}, bytes.NewReader(wav))
}

// previewWAV returns the 16-bit WAV of a cached latent, decoding it at most once per
// key: every route that makes a latent (recommend's mapped one, interpolate, transfer)
// shares this cache, so the same latent is decoded once whichever route asked.
func (s *Server) previewWAV(ctx context.Context, key string, lat previewLatent) ([]byte, error) {
	wav, ok := s.previews.Get(key)
	s.metrics.cacheResult("preview_audio", ok)
	if ok {
		return wav, nil
	}
	// One decode per key even when a player fires several range requests at once.
	v, err, _ := s.decodes.Do(key, func() (any, error) {
		if w, ok := s.previews.Get(key); ok {
			return w, nil
		}
		pcm, rate, err := s.engine.Decode(ctx, lat.instrument, lat.z)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := audio.EncodeWAV(&buf, pcm, rate, audio.PCM16); err != nil {
			return nil, fmt.Errorf("encode the preview: %w", err)
		}
		s.previews.Add(key, buf.Bytes())
		return buf.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// instrumentOf checks a URL's instrument: well-formed and one the bundle knows.
func (s *Server) instrumentOf(c *gin.Context) (string, bool) {
	inst := c.Param("instrument")
	if inst == loopid.OneShots && s.engine.HasOneShots() {
		return inst, true
	}
	if !loopid.ValidInstrument(inst) || !slices.Contains(s.engine.Instruments(), inst) {
		known := s.engine.Instruments()
		if s.engine.HasOneShots() {
			known = append(known, loopid.OneShots)
		}
		writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("no instrument %q: the bundle knows %s", clip(inst), strings.Join(known, ", ")))
		return "", false
	}
	return inst, true
}

// storedLoop finds a loop by id in its instrument's collection, answering 404 itself.
func (s *Server) storedLoop(c *gin.Context) (*vectordb.Row, string, bool) {
	inst, ok := s.instrumentOf(c)
	if !ok {
		return nil, "", false
	}
	id := c.Param("id")
	if !loopid.ValidID(id) {
		writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("%q is not a loop id: ids are 32 lower-case hex characters", clip(id)))
		return nil, "", false
	}
	coll := s.engine.Collection(inst)
	rows, err := s.engine.Store().Get(c.Request.Context(), coll, []string{id})
	if errors.Is(err, vectordb.ErrNoCollection) {
		writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("no %s loops are stored yet: ingest a library first", inst))
		return nil, "", false
	}
	if err != nil {
		s.fail(c, err)
		return nil, "", false
	}
	if len(rows) == 0 {
		writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("no %s loop %s is stored", inst, id))
		return nil, "", false
	}
	return &rows[0], inst, true
}

func (s *Server) loop(c *gin.Context) {
	row, inst, ok := s.storedLoop(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, LoopJSON{ID: row.ID, Instrument: inst, Pack: row.Pack, BPM: row.BPM, Key: row.Key,
		Duration: row.Duration, SampleRate: row.SampleRate, IngestedAt: row.IngestedAt, AudioURL: audioURL(inst, row.ID),
		Provenance: provenance(row), Health: loopHealth(row)})
}

// loopAudio serves a stored loop's file. The path comes from the stored row, never
// from the request, and the file's content must still hash to the id: a file replaced
// after ingest is not served under the old id.
func (s *Server) loopAudio(c *gin.Context) {
	format, ok := audioFormat(c)
	if !ok {
		return
	}
	row, _, ok := s.storedLoop(c)
	if !ok {
		return
	}
	f, err := os.Open(row.Path)
	if err != nil {
		writeProblem(c, http.StatusGone, "file-changed", fmt.Sprintf("loop %s is stored but its file is gone from the server: re-ingest the library", row.ID))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		writeProblem(c, http.StatusGone, "file-changed", fmt.Sprintf("loop %s is stored but its file is no longer a regular file: re-ingest the library", row.ID))
		return
	}
	vkey := fileVersion(row.Path, st)
	id, known := s.verified.Get(vkey)
	s.metrics.cacheResult("file_verified", known)
	if !known {
		if id, err = loopid.ID(f); err != nil {
			s.fail(c, fmt.Errorf("read loop %s: %w", row.ID, err))
			return
		}
		s.verified.Add(vkey, id)
	}
	if id != row.ID {
		writeProblem(c, http.StatusGone, "file-changed", fmt.Sprintf("the file of loop %s changed after it was ingested: re-ingest the library", row.ID))
		return
	}
	if format == audioFormatWAV {
		s.serveWAVRendition(c, row.ID, f, st.Size(), st.ModTime())
		return
	}
	head := make([]byte, audio.SniffLen)
	n, _ := f.ReadAt(head, 0)
	kind := audio.Sniff(head[:n])
	ct := kind.ContentType()
	if ct == "" {
		ct = "application/octet-stream"
	}
	c.Header("Content-Type", ct)
	c.Header("Content-Disposition", `inline; filename="`+row.ID+kind.Extension()+`"`)
	c.Header("ETag", `"`+row.ID+`"`)
	c.Header("Cache-Control", "private, max-age=86400")
	c.Header("X-Content-Type-Options", "nosniff")
	serveContent(c, st.ModTime(), f)
}

// CollectionJSON describes a collection in GET /v1/collections.
type CollectionJSON struct {
	Name       string `json:"name"`
	Instrument string `json:"instrument,omitempty"`
	Dim        int    `json:"dim"`
	Count      int    `json:"count"`
	// BundleID is the encoder id the collection records (the JSON name predates
	// per-encoder ids).
	BundleID string `json:"bundle_id"`
	// Current is true when the collection was encoded by this server's encoder for its
	// instrument; queries against other collections are refused.
	Current bool `json:"current"`
	// Embedder names the representation a collection of embedder vectors holds (ingest
	// --embedders); empty for an instrument's own collection (the latent).
	Embedder string `json:"embedder,omitempty"`
}

func (s *Server) collections(c *gin.Context) {
	cs, err := s.engine.Store().Collections(c.Request.Context())
	if err != nil {
		s.fail(c, fmt.Errorf("%w: list collections: %w", vectordb.ErrUnavailable, err))
		return
	}
	byName := map[string]string{}
	for _, i := range s.engine.Instruments() {
		byName[s.engine.Collection(i)] = i
	}
	if s.engine.HasOneShots() {
		byName[s.engine.Collection(loopid.OneShots)] = loopid.OneShots
	}
	out := struct {
		Bundle      string           `json:"bundle"`
		Pairs       []string         `json:"pairs"`
		Collections []CollectionJSON `json:"collections"`
		Rerank      RerankJSON       `json:"rerank"`
		Hub         HubJSON          `json:"hub"`
		// Embedders lists, by instrument, the representations similar and profile can
		// rank the library by now: latent, then the embedders it was ingested with.
		Embedders map[string][]string `json:"embedders"`
	}{Embedders: s.engine.LibraryEmbeddersIn(cs), Bundle: s.engine.BundleID(), Collections: []CollectionJSON{}, Pairs: []string{}, Rerank: RerankJSON{Pairs: []string{}}}
	out.Rerank.Default, out.Rerank.N = s.engine.RerankDefault()
	for _, p := range s.engine.Pairs() {
		out.Pairs = append(out.Pairs, p.String())
		if s.engine.RerankAvailable(p.From, p.To) == nil {
			out.Rerank.Pairs = append(out.Rerank.Pairs, p.String())
		}
	}
	out.Rerank.Available = len(out.Rerank.Pairs) > 0
	h := s.engine.HubSettings()
	out.Hub = HubJSON{Available: h.K > 0, Default: s.engine.HubDefault(), K: h.K, Beta: h.Beta}
	out.Rerank.Default = out.Rerank.Default && out.Rerank.Available
	for _, x := range cs {
		cj := CollectionJSON{Name: x.Name, Instrument: byName[x.Name], Dim: x.Dim,
			Count: x.Count, BundleID: x.EncoderID, Current: s.engine.EncodedByLoaded(byName[x.Name], x.EncoderID)}
		if _, name, current, ok := s.engine.EmbedderCollection(x); ok {
			cj.Embedder, cj.Current = name, current
		}
		out.Collections = append(out.Collections, cj)
	}
	c.JSON(http.StatusOK, out)
}

// fileVersion names one version of a file: its path, size and modification time, and
// where the system gives them its inode and change time. The change time cannot be set
// by a program (touch -r sets the modification time only), so a file rewritten or
// swapped in place under the same size and mtime still gets a new version, and is
// hashed again before it is served.
func fileVersion(path string, st os.FileInfo) string {
	v := fmt.Sprintf("%s\x00%d\x00%d", path, st.Size(), st.ModTime().UnixNano())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		v += fmt.Sprintf("\x00%d\x00%d\x00%d.%d", sys.Dev, sys.Ino, sys.Ctim.Sec, sys.Ctim.Nsec)
	}
	return v
}

// serveContent is http.ServeContent whose error answers are problem details like every
// other error of the API: net/http writes a bare text/plain 416 for a range it cannot
// satisfy ("bytes=abc", or past the end).
func serveContent(c *gin.Context, modtime time.Time, content io.ReadSeeker) {
	w := &rangeProblemWriter{ResponseWriter: c.Writer, c: c}
	http.ServeContent(w, c.Request, "", modtime, content)
}

type rangeProblemWriter struct {
	http.ResponseWriter
	c        *gin.Context
	replaced bool
}

func (w *rangeProblemWriter) WriteHeader(status int) {
	if status != http.StatusRequestedRangeNotSatisfiable {
		w.ResponseWriter.WriteHeader(status)
		return
	}
	w.replaced = true
	h := w.Header()
	h.Del("Content-Length")
	h.Del("Content-Type")
	p := Problem{Type: problemType("range-not-satisfiable"), Title: problemTitles["range-not-satisfiable"], Status: status,
		Detail:   fmt.Sprintf("the Range %q is not satisfiable for this file (%s): ask for bytes=START-END within the file, or leave Range out", clip(w.c.GetHeader("Range")), h.Get("Content-Range")),
		Instance: w.c.Request.URL.Path, RequestID: requestID(w.c)}
	b, _ := json.Marshal(p)
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.ResponseWriter.WriteHeader(status)
	if w.c.Request.Method != http.MethodHead {
		_, _ = w.ResponseWriter.Write(b)
	}
}

func (w *rangeProblemWriter) Write(b []byte) (int, error) {
	if w.replaced {
		return len(b), nil // net/http's text body, replaced by the problem above
	}
	return w.ResponseWriter.Write(b)
}
