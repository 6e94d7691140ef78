package query

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/recommend"
)

// SimilarResponse is the body of a successful POST /v1/similar.
type SimilarResponse struct {
	RequestID  string `json:"request_id"`
	Bundle     string `json:"bundle"`
	Instrument string `json:"instrument"`
	// Embedder is the representation the loops were ranked by (latent, the default).
	Embedder string         `json:"embedder"`
	Seed     recommend.Seed `json:"seed"`
	// Offset is how many better-ranked loops this page skipped; results are ranked from
	// offset+1.
	Offset          int                        `json:"offset"`
	Results         []RankedLoop               `json:"results"`
	Filter          *recommend.Applied         `json:"filter,omitempty"`
	ExcludedUnknown *recommend.ExcludedUnknown `json:"excluded_unknown,omitempty"`
}

// ProfileJSON describes the profile a response was ranked for.
type ProfileJSON struct {
	Liked    int `json:"liked"`
	Disliked int `json:"disliked"`
	// BPM and Key are the liked loops' median tempo and most frequent key: the
	// references of a tempo or key filter that names none.
	BPM           float64 `json:"bpm,omitempty"`
	Key           string  `json:"key,omitempty"`
	DislikeWeight float64 `json:"dislike_weight"`
}

// ProfileResponse is the body of a successful POST /v1/profile.
type ProfileResponse struct {
	RequestID string `json:"request_id"`
	Bundle    string `json:"bundle"`
	// From is the liked loops' instrument, To the results'.
	From string `json:"from"`
	To   string `json:"to"`
	// Embedder is the representation the loops were ranked by (latent, the default).
	Embedder        string                     `json:"embedder"`
	Profile         ProfileJSON                `json:"profile"`
	Offset          int                        `json:"offset"`
	Results         []RankedLoop               `json:"results"`
	Filter          *recommend.Applied         `json:"filter,omitempty"`
	ExcludedUnknown *recommend.ExcludedUnknown `json:"excluded_unknown,omitempty"`
}

// applied is the resolved filter when there is one to show.
func applied(ap recommend.Applied) *recommend.Applied {
	if ap.BPMRanges != nil || ap.Keys != nil {
		return &ap
	}
	return nil
}

func (s *Server) similar(c *gin.Context) {
	q, err := ParseSimilar(c.Request, s.cfg.MaxUploadBytes)
	if err != nil {
		s.fail(c, err)
		return
	}
	req := q.Request
	if q.Upload != nil {
		s.metrics.uploadSize.Observe(float64(len(q.Upload)))
		// An instrument without an encoder should not cost a decode.
		check := req
		check.SeedAudio, check.SeedID = nil, "x"
		if err := s.engine.ValidateSimilar(&check); err != nil {
			s.fail(c, err)
			return
		}
		if !s.engine.HasEncoder(check.Instrument) {
			s.fail(c, fmt.Errorf("%w: the bundle has no %s encoder, so an uploaded %s seed cannot be embedded: send a stored seed_id", recommend.ErrNoEncoder, check.Instrument, check.Instrument))
			return
		}
		var err error
		if req.SeedAudio, req.SeedAudioID, req.SeedDuration, err = s.uploadedSeed(q.Upload, req.SeedOffset); err != nil {
			s.fail(c, err)
			return
		}
	}
	resp, err := s.engine.Similar(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, SimilarResponse{RequestID: requestID(c), Bundle: resp.BundleID, Instrument: resp.Instrument, Embedder: resp.Embedder, Seed: resp.Seed,
		Offset: resp.Offset, Results: rankedLoops(resp.Instrument, resp.Results), Filter: applied(resp.Applied), ExcludedUnknown: resp.ExcludedUnknown})
}

func (s *Server) profile(c *gin.Context) {
	q, err := ParseProfile(c.Request)
	if err != nil {
		s.fail(c, err)
		return
	}
	resp, err := s.engine.Profile(c.Request.Context(), q.Request)
	if errors.Is(err, recommend.ErrSeedNotFound) {
		// A liked loop that is not stored is the request's mistake, not a missing seed.
		writeProblem(c, http.StatusUnprocessableEntity, "unknown-loops", err.Error())
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	w := recommend.DefaultDislikeWeight
	if q.Request.DislikeWeight != nil {
		w = *q.Request.DislikeWeight
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, ProfileResponse{RequestID: requestID(c), Bundle: resp.BundleID, From: resp.From, To: resp.Instrument, Embedder: resp.Embedder,
		Profile: ProfileJSON{Liked: len(q.Request.Liked), Disliked: len(q.Request.Disliked), BPM: resp.BPM, Key: resp.Key, DislikeWeight: w},
		Offset:  resp.Offset, Results: rankedLoops(resp.Instrument, resp.Results), Filter: applied(resp.Applied), ExcludedUnknown: resp.ExcludedUnknown})
}
