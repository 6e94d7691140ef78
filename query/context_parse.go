package query

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/loopmatch/loopmatch/loopid"
	"github.com/loopmatch/loopmatch/recommend"
)

// ContextQuery is a parsed context request of POST /v1/recommend: the engine request
// (its uploaded loops' Audio still empty) and each uploaded loop's bytes by its place in
// the context, which the handler decodes at the bundle's rate.
type ContextQuery struct {
	Request recommend.ContextRequest
	Uploads map[int][]byte
}

// contextBody is the JSON form of a context request: "context" instead of "seed_id".
type contextBody struct {
	Context   []contextLoopBody `json:"context"`
	Target    *targetBody       `json:"target"`
	K         *int              `json:"k"`
	Filter    *filterBody       `json:"filter"`
	MMRLambda *float64          `json:"mmr_lambda"`
}

// contextLoopBody is one loop of a context: a stored loop (id and instrument) or, in a
// multipart request, an uploaded "context" part named by its file name (file).
type contextLoopBody struct {
	ID         *string  `json:"id"`
	Instrument *string  `json:"instrument"`
	File       *string  `json:"file"`
	Gain       *float64 `json:"gain"`
}

type targetBody struct {
	Collection *string `json:"collection"`
	Kind       *string `json:"kind"`
	Instrument *string `json:"instrument"`
}

// maxContextParts: one context part more than a context may hold reaches the engine,
// which says how many it takes; more is refused while reading.
const maxContextParts = recommend.MaxContextLoops + 1

// isContextJSON reports whether a recommend JSON body is a context request (it has a
// top-level "context").
func isContextJSON(body []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return false
	}
	_, ok := top["context"]
	return ok
}

// ParseContextJSON parses a context request. files are the multipart request's
// "context" parts (nil for a JSON body): each is a loop of the context, at the gain of
// the entry naming its file name, else 1, after the entries. Errors are *apiError.
func ParseContextJSON(body []byte, files []formFile) (*ContextQuery, error) {
	var b contextBody
	if err := decodeStrict(body, &b, "context recommend"); err != nil {
		return nil, err
	}
	if b.Context == nil && len(files) == 0 {
		return nil, badRequest("context is missing: give 1 to %d loops ({\"id\": ..., \"instrument\": \"drum\"}, or upload them as multipart \"context\" parts)", recommend.MaxContextLoops)
	}
	if len(b.Context)+len(files) > 4*recommend.MaxContextLoops {
		return nil, invalidParam("the context has %d loops, at most %d: leave some out", len(b.Context)+len(files), recommend.MaxContextLoops)
	}
	cq := &ContextQuery{Uploads: map[int][]byte{}}
	r := &cq.Request
	used := make([]bool, len(files))
	for i, e := range b.Context {
		l := recommend.ContextLoop{Gain: 1}
		if e.Gain != nil {
			l.Gain = *e.Gain
		}
		switch {
		case e.ID != nil && e.File != nil:
			return nil, badRequest("context[%d] gives both id and file: a loop is stored (id) or uploaded (file)", i)
		case e.ID != nil:
			if err := checkID(fmt.Sprintf("context[%d].id", i), *e.ID); err != nil {
				return nil, err
			}
			if e.Instrument == nil {
				return nil, badRequest("context[%d] needs the instrument whose collection holds %s (drum, bass, ...)", i, *e.ID)
			}
			inst, err := checkInstrument(fmt.Sprintf("context[%d].instrument", i), *e.Instrument)
			if err != nil {
				return nil, err
			}
			l.ID, l.Instrument = *e.ID, inst
		case e.File != nil:
			if files == nil {
				return nil, badRequest("context[%d] names the file %q: upload files as multipart/form-data parts \"context\", with this JSON in the field \"request\"", i, clip(*e.File))
			}
			k := -1
			for j, f := range files {
				if !used[j] && f.filename == *e.File {
					k = j
					break
				}
			}
			if k < 0 {
				return nil, badRequest("context[%d] names the file %q, and no \"context\" part has that file name", i, clip(*e.File))
			}
			used[k], l.Name = true, files[k].filename
			cq.Uploads[len(r.Loops)] = files[k].data
		default:
			return nil, badRequest("context[%d] needs an id (a stored loop) or a file (an uploaded \"context\" part)", i)
		}
		r.Loops = append(r.Loops, l)
	}
	for j, f := range files {
		if !used[j] {
			cq.Uploads[len(r.Loops)] = f.data
			r.Loops = append(r.Loops, recommend.ContextLoop{Gain: 1, Name: f.filename})
		}
	}
	if b.Target == nil {
		return nil, badRequest("target is missing: {\"collection\": %q, \"kind\": \"snare\"} ranks one-shots, {\"instrument\": \"bass\"} loops", loopid.OneShots)
	}
	if t := b.Target; t.Collection != nil {
		r.Target.Collection = *t.Collection
	}
	if t := b.Target; t.Kind != nil {
		r.Target.Kind = *t.Kind
	}
	if t := b.Target; t.Instrument != nil {
		inst, err := checkInstrument("target.instrument", *t.Instrument)
		if err != nil {
			return nil, err
		}
		r.Target.Instrument = inst
	}
	if b.K != nil {
		if err := checkK(*b.K); err != nil {
			return nil, err
		}
		r.K = *b.K
	}
	if b.MMRLambda != nil {
		if err := checkLambda(*b.MMRLambda); err != nil {
			return nil, err
		}
		r.MMRLambda = *b.MMRLambda
	}
	var err error
	if r.Filter, err = filterFromJSON(b.Filter); err != nil {
		return nil, err
	}
	if r.Filter.ExcludeSeedPack || r.Filter.Tempo != nil || r.Filter.KeyCompat != nil {
		return nil, invalidParam("a context has no seed: exclude_seed_pack, tempo and key_compat do not apply (use min_bpm/max_bpm and keys)")
	}
	return cq, nil
}

// parseRecommendRequest reads POST /v1/recommend: a seed request (RecommendQuery) or a
// context request (ContextQuery: JSON with "context", or multipart with "context" parts
// and the JSON in the field "request"). Exactly one of the two is returned.
func parseRecommendRequest(r *http.Request, maxUpload int64) (*RecommendQuery, *ContextQuery, error) {
	mt, params, err := requestMediaType(r, recommendTypes)
	if err != nil {
		return nil, nil, err
	}
	switch mt {
	case "application/json":
		body, err := jsonBody(r)
		if err != nil {
			return nil, nil, err
		}
		if isContextJSON(body) {
			cq, err := ParseContextJSON(body, nil)
			return nil, cq, err
		}
		q, err := ParseRecommendJSON(body)
		return q, nil, err
	case "multipart/form-data":
		form, files, err := readForm(r, params["boundary"], formLimits{files: map[string]int{"audio": 1, "context": maxContextParts},
			fileBytes: maxUpload, fieldBytes: maxFieldBytes, maxParts: 32})
		if err != nil {
			return nil, nil, err
		}
		var ctxFiles []formFile
		for _, f := range files {
			if f.name == "context" {
				ctxFiles = append(ctxFiles, f)
			}
		}
		if len(ctxFiles) > 0 || form.Has("request") {
			if fileNamed(files, "audio") != nil {
				return nil, nil, badRequest("a request has a seed (part \"audio\") or a context (parts \"context\"), not both")
			}
			req := form.Get("request")
			if len(form) > 1 || len(form["request"]) > 1 {
				return nil, nil, badRequest("a context upload carries its parameters as JSON in the one field \"request\" (fields: %s)", strings.Join(mapKeysOf(form), ", "))
			}
			if req == "" {
				req = "{}"
			}
			cq, err := ParseContextJSON([]byte(req), ctxFiles)
			return nil, cq, err
		}
		upload := fileNamed(files, "audio")
		if upload == nil {
			return nil, nil, badRequest("no \"audio\" part: upload the seed loop as the form file \"audio\" (for a stored seed send JSON with seed_id), or the loops of a context as parts \"context\"")
		}
		q, err := ParseRecommendForm(form)
		if err != nil {
			return nil, nil, err
		}
		q.Upload = upload
		return q, nil, nil
	}
	q, err := ParseRecommend(r, maxUpload)
	return q, nil, err
}

func mapKeysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, clip(k))
	}
	return out
}
