package query

import (
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/recommend"
)

// GeneratedJSON is the body of a successful POST /v1/interpolate or /v1/transfer.
type GeneratedJSON struct {
	RequestID string `json:"request_id"`
	Bundle    string `json:"bundle"`
	// Instrument is the decoder that renders the audio (transfer's to).
	Instrument string `json:"instrument"`
	// From is a transfer's source instrument; Ratio an interpolation's mix.
	From  string   `json:"from,omitempty"`
	Ratio *float64 `json:"ratio,omitempty"`
	// Sources are the loops used: a and b of an interpolation, the transferred loop.
	Sources []recommend.Seed `json:"sources"`
	// PreviewURL is the decoded audio in the preview cache (16-bit WAV), decoded on the
	// first GET and shared by every request that yields the same latent.
	PreviewURL string  `json:"preview_url"`
	SampleRate int     `json:"sample_rate"`
	Duration   float64 `json:"duration"`
}

func (s *Server) interpolate(c *gin.Context) {
	q, err := ParseInterpolate(c.Request, s.cfg.MaxUploadBytes)
	if err != nil {
		s.fail(c, err)
		return
	}
	req := q.Request
	if q.UploadA != nil || q.UploadB != nil {
		// Check the instrument before decoding: a wrong one should not cost a decode.
		if err := s.engine.CheckModels(req.Instrument, req.Instrument, true); err != nil {
			s.fail(c, err)
			return
		}
		if req.A.Audio, err = s.loadUpload("loop a", q.UploadA); err != nil {
			s.fail(c, err)
			return
		}
		if req.B.Audio, err = s.loadUpload("loop b", q.UploadB); err != nil {
			s.fail(c, err)
			return
		}
	}
	g, err := s.engine.Interpolate(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	ratio := req.Ratio
	s.answerGenerated(c, g, GeneratedJSON{Ratio: &ratio})
}

func (s *Server) transfer(c *gin.Context) {
	q, err := ParseTransfer(c.Request, s.cfg.MaxUploadBytes)
	if err != nil {
		s.fail(c, err)
		return
	}
	req := q.Request
	if q.Upload != nil {
		if err := s.engine.CheckModels(req.From, req.To, true); err != nil {
			s.fail(c, err)
			return
		}
		if req.Loop.Audio, err = s.loadUpload("loop", q.Upload); err != nil {
			s.fail(c, err)
			return
		}
	}
	g, err := s.engine.Transfer(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.answerGenerated(c, g, GeneratedJSON{From: req.From})
}

// loadUpload decodes an uploaded file to the encoders' window; nil stays nil.
func (s *Server) loadUpload(what string, data []byte) ([]float32, error) {
	if data == nil {
		return nil, nil
	}
	s.metrics.uploadSize.Observe(float64(len(data)))
	lim := audio.Limits{MaxFileBytes: s.cfg.MaxUploadBytes, MaxDuration: s.cfg.MaxUploadDuration}
	pcm, _, err := audio.LoadBytes(data, s.engine.AudioOptions(lim))
	if err != nil {
		return nil, fmt.Errorf("the uploaded %s: %w", what, err)
	}
	return pcm, nil
}

// answerGenerated puts the latent into the preview cache under the same key a
// recommend preview of that latent would get, then answers with its URL, or with the
// WAV itself when the client asks for audio (Accept: audio/wav).
func (s *Server) answerGenerated(c *gin.Context, g *recommend.Generated, out GeneratedJSON) {
	key := previewKey(g.BundleID, g.Instrument, g.Latent)
	lat := previewLatent{instrument: g.Instrument, z: g.Latent}
	s.latents.Add(key, lat)
	url := "/v1/previews/" + key + ".wav"
	if wantsWAV(c.GetHeader("Accept")) {
		wav, err := s.previewWAV(c.Request.Context(), key, lat)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.Header("Content-Location", url)
		c.Header("Content-Disposition", `inline; filename="`+g.Instrument+`-`+key[:12]+`.wav"`)
		c.Header("ETag", `"`+key+`"`)
		c.Header("Cache-Control", "no-store")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, "audio/wav", wav)
		return
	}
	out.RequestID, out.Bundle, out.Instrument, out.Sources, out.PreviewURL = requestID(c), g.BundleID, g.Instrument, g.Sources, url
	out.SampleRate = s.engine.SampleRate()
	if out.SampleRate > 0 {
		out.Duration = float64(s.engine.DecodedSamples(g.Instrument)) / float64(out.SampleRate)
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// wantsWAV reports whether an Accept header asks for audio rather than JSON: it names
// a WAV type (or audio/*) and does not also name JSON. A client that accepts both gets
// JSON, the API's default.
func wantsWAV(accept string) bool {
	audioOK, jsonOK := false, false
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || params["q"] == "0" {
			continue
		}
		switch mt {
		case "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/*":
			audioOK = true
		case "application/json", "application/*":
			jsonOK = true
		}
	}
	return audioOK && !jsonOK
}
