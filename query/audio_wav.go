package query

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
)

// Formats GET /v1/loops/{instrument}/{id}/audio serves: the stored file as it is, or a
// WAV rendition of it for browsers that cannot decode the original (Chromium's
// decodeAudioData refuses AIFF).
const (
	audioFormatOriginal = "original"
	audioFormatWAV      = "wav"
)

// audioFormat reads ?format=, answering 400 itself when it names no format.
func audioFormat(c *gin.Context) (string, bool) {
	f, given := c.GetQuery("format")
	switch {
	case !given || f == audioFormatOriginal:
		return audioFormatOriginal, true
	case f == audioFormatWAV:
		return audioFormatWAV, true
	}
	writeProblem(c, http.StatusBadRequest, "invalid-request", fmt.Sprintf("format=%q: use format=wav for a WAV rendition, or leave it out for the file as stored", clip(f)))
	return "", false
}

// wavRenditionKey names a loop's WAV rendition in the preview cache: the id is the
// content's hash, so one key per content whatever the path; the prefix keeps it apart
// from preview keys (64 hex).
func wavRenditionKey(id string) string { return "wav:" + id }

// serveWAVRendition answers with the loop's audio as 16-bit WAV at its own sample rate
// and channels, decoded with the reader ingest uses (so every format ingest accepts
// plays), once per loop: the bytes share the bounded preview cache.
func (s *Server) serveWAVRendition(c *gin.Context, id string, f *os.File, size int64, mod time.Time) {
	wav, err := s.wavRendition(c.Request.Context(), id, f, size)
	if err != nil {
		s.fail(c, fmt.Errorf("render loop %s as WAV: %w", id, err))
		return
	}
	c.Header("Content-Type", "audio/wav")
	c.Header("Content-Disposition", `inline; filename="`+id+`.wav"`)
	c.Header("ETag", `"`+id+`.wav"`)
	c.Header("Cache-Control", "private, max-age=86400")
	c.Header("X-Content-Type-Options", "nosniff")
	serveContent(c, mod, bytes.NewReader(wav))
}

func (s *Server) wavRendition(ctx context.Context, id string, f *os.File, size int64) ([]byte, error) {
	key := wavRenditionKey(id)
	if wav, ok := s.previews.Get(key); ok {
		s.metrics.cacheResult("wav_rendition", true)
		return wav, nil
	}
	s.metrics.cacheResult("wav_rendition", false)
	// One decode per loop even when a player fires several range requests at once.
	v, err, _ := s.decodes.Do(key, func() (any, error) {
		if w, ok := s.previews.Get(key); ok {
			return w, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		buf, err := audio.Decode(io.NewSectionReader(f, 0, size), size, audio.DefaultLimits())
		if err != nil {
			return nil, fmt.Errorf("decode the stored file: %w (re-export it as WAV, or re-ingest the library)", err)
		}
		var out bytes.Buffer
		out.Grow(44 + 2*len(buf.Data))
		if err := audio.EncodeWAVChannels(&out, buf.Data, buf.Channels, buf.SampleRate, audio.PCM16); err != nil {
			return nil, err
		}
		s.previews.Add(key, out.Bytes())
		return out.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}
