package query

import (
	"fmt"
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// ContextResponse is the answer to a context request of POST /v1/recommend.
type ContextResponse struct {
	RequestID string                    `json:"request_id"`
	Bundle    string                    `json:"bundle"`
	Target    recommend.ContextTarget   `json:"target"`
	Context   []recommend.ContextSource `json:"context"`
	// BPM is the context's tempo (its first stored loop's that has one).
	BPM float64 `json:"bpm,omitempty"`
	// Heard says how the mix was embedded (context_encoder, or an encoder and mapper).
	Heard   string       `json:"heard"`
	Results []RankedLoop `json:"results"`
}

// recommendContext answers a context request: uploads decoded at the bundle's rate
// (bounded as a seed upload is), the mix ranked by the engine.
func (s *Server) recommendContext(c *gin.Context, cq *ContextQuery) {
	req := cq.Request
	// check what needs no audio first, so a bad target costs no decode
	probe := req
	probe.Loops = make([]recommend.ContextLoop, len(req.Loops))
	for i, l := range req.Loops {
		probe.Loops[i] = l
		if l.ID == "" {
			probe.Loops[i].Audio = []float32{}
		}
	}
	if err := s.engine.ValidateContext(&probe); err != nil {
		s.fail(c, err)
		return
	}
	lim := audio.Limits{MaxFileBytes: s.cfg.MaxUploadBytes, MaxDuration: s.cfg.MaxUploadDuration}
	places := make([]int, 0, len(cq.Uploads))
	for i := range cq.Uploads {
		places = append(places, i)
	}
	sort.Ints(places)
	for _, i := range places {
		data := cq.Uploads[i]
		s.metrics.uploadSize.Observe(float64(len(data)))
		l, err := audio.LoadLoopBytes(data, s.engine.AudioOptions(lim))
		if err != nil {
			s.fail(c, fmt.Errorf("context loop %d (uploaded %q): %w", i+1, clip(req.Loops[i].Name), err))
			return
		}
		req.Loops[i].Audio = l.Mono
	}
	resp, err := s.engine.RecommendContext(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	inst := resp.Target.Instrument
	if resp.Target.OneShots() {
		inst = loopid.OneShots
	}
	out := ContextResponse{RequestID: requestID(c), Bundle: resp.BundleID, Target: resp.Target, Context: resp.Context, BPM: resp.BPM,
		Heard: resp.Heard, Results: rankedLoops(inst, resp.Results)}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
