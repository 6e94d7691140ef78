package query

import (
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/loopmatch/loopmatch/recommend"
)

// InterpolateQuery is a parsed POST /v1/interpolate: the engine request with the stored
// loops' ids, and the raw files of uploaded loops (decoded by the handler, which knows
// the bundle's rate).
type InterpolateQuery struct {
	Request          recommend.InterpolateRequest
	UploadA, UploadB []byte
}

// TransferQuery is a parsed POST /v1/transfer.
type TransferQuery struct {
	Request recommend.TransferRequest
	Upload  []byte
}

// interpolateBody and transferBody are the JSON forms. Pointers tell "absent" from zero:
// a missing ratio is an error, not 0.
type interpolateBody struct {
	Instrument *string  `json:"instrument"`
	AID        *string  `json:"a_id"`
	BID        *string  `json:"b_id"`
	Ratio      *float64 `json:"ratio"`
}

type transferBody struct {
	ID   *string `json:"id"`
	From *string `json:"from"`
	To   *string `json:"to"`
}

const (
	interpolateTypes = "application/json (a_id, b_id) or multipart/form-data (files \"a\" and \"b\", or fields a_id and b_id)"
	transferTypes    = "application/json (id), multipart/form-data (part \"audio\") or audio/* (raw file, from and to in the query string)"
)

// ParseInterpolate reads an interpolate request from JSON (stored loops by id) or
// multipart/form-data (each loop a file part "a"/"b" or a field a_id/b_id, plus the
// fields instrument and ratio). maxUpload bounds each file. Errors are *apiError.
func ParseInterpolate(r *http.Request, maxUpload int64) (*InterpolateQuery, error) {
	mt, params, err := requestMediaType(r, interpolateTypes)
	if err != nil {
		return nil, err
	}
	switch mt {
	case "application/json":
		body, err := jsonBody(r)
		if err != nil {
			return nil, err
		}
		return ParseInterpolateJSON(body)
	case "multipart/form-data":
		form, files, err := readForm(r, params["boundary"], formLimits{files: map[string]int{"a": 1, "b": 1},
			fileBytes: maxUpload, fieldBytes: maxFieldBytes, maxParts: 16})
		if err != nil {
			return nil, err
		}
		return parseInterpolateForm(form, fileNamed(files, "a"), fileNamed(files, "b"))
	}
	return nil, unsupportedMediaType(mt, interpolateTypes)
}

// ParseTransfer reads a transfer request from JSON (a stored loop by id),
// multipart/form-data (file part "audio", fields from and to) or a raw audio body
// (from and to in the query string).
func ParseTransfer(r *http.Request, maxUpload int64) (*TransferQuery, error) {
	set := func(q *TransferQuery, b []byte) { q.Upload = b }
	return uploadRoute[*TransferQuery]{transferTypes, 16, "the loop",
		"upload the loop as the form file \"audio\" (for a stored loop send JSON with id)", ParseTransferJSON, parseTransferForm, set}.parse(r, maxUpload)
}

// ParseInterpolateJSON parses {"instrument", "a_id", "b_id", "ratio"}, all required.
func ParseInterpolateJSON(body []byte) (*InterpolateQuery, error) {
	var b interpolateBody
	if err := decodeStrict(body, &b, "interpolate"); err != nil {
		return nil, err
	}
	if b.Instrument == nil {
		return nil, badRequest("instrument is required: name the instrument of both loops, e.g. \"bass\"")
	}
	if b.AID == nil || b.BID == nil {
		return nil, badRequest("a_id and b_id are required in a JSON request: the ids of two stored loops of the instrument (to upload loops, send multipart/form-data with files \"a\" and \"b\")")
	}
	if b.Ratio == nil {
		return nil, badRequest("ratio is required: a mix ratio in [0, 1] (0 = loop a alone, 1 = loop b alone)")
	}
	q := &InterpolateQuery{}
	var err error
	if q.Request.Instrument, err = checkInstrument("instrument", *b.Instrument); err != nil {
		return nil, err
	}
	if err := checkID("a_id", *b.AID); err != nil {
		return nil, err
	}
	if err := checkID("b_id", *b.BID); err != nil {
		return nil, err
	}
	if err := checkRatio(*b.Ratio); err != nil {
		return nil, err
	}
	q.Request.A.ID, q.Request.B.ID, q.Request.Ratio = *b.AID, *b.BID, *b.Ratio
	return q, nil
}

// ParseTransferJSON parses {"id", "from", "to"}, all required.
func ParseTransferJSON(body []byte) (*TransferQuery, error) {
	var b transferBody
	if err := decodeStrict(body, &b, "transfer"); err != nil {
		return nil, err
	}
	if b.ID == nil || b.From == nil || b.To == nil {
		return nil, badRequest("id, from and to are required in a JSON request: the id of a stored loop of the from instrument, " +
			"and the instrument whose decoder renders it, e.g. \"from\": \"drum\", \"to\": \"bass\" (or upload the loop as multipart/form-data or an audio/* body)")
	}
	q, err := parseTransferForm(url.Values{"from": {*b.From}, "to": {*b.To}})
	if err != nil {
		return nil, err
	}
	if err := checkID("id", *b.ID); err != nil {
		return nil, err
	}
	q.Request.Loop.ID = *b.ID
	return q, nil
}

// parseInterpolateForm parses the multipart fields: each loop is a file or an id,
// never both.
func parseInterpolateForm(q url.Values, a, b []byte) (*InterpolateQuery, error) {
	if err := checkFields(q, []string{"instrument", "ratio", "a_id", "b_id"}, nil); err != nil {
		return nil, err
	}
	out := &InterpolateQuery{UploadA: a, UploadB: b}
	v, ok := one(q, "instrument")
	if !ok {
		return nil, badRequest("the field instrument is required: name the instrument of both loops, e.g. bass")
	}
	var err error
	if out.Request.Instrument, err = checkInstrument("instrument", v); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name   string
		upload []byte
		ref    *recommend.LoopRef
	}{{"a", a, &out.Request.A}, {"b", b, &out.Request.B}} {
		id, hasID := one(q, l.name+"_id")
		switch {
		case hasID && l.upload != nil:
			return nil, badRequest("loop %s is given twice, as the file %q and the field %s_id: send one", l.name, l.name, l.name)
		case !hasID && l.upload == nil:
			return nil, badRequest("loop %s is missing: attach it as the file %q or name a stored loop in the field %s_id", l.name, l.name, l.name)
		case hasID:
			if err := checkID(l.name+"_id", id); err != nil {
				return nil, err
			}
			l.ref.ID = id
		}
	}
	v, ok = one(q, "ratio")
	if !ok {
		return nil, badRequest("the field ratio is required: a mix ratio in [0, 1] (0 = loop a alone, 1 = loop b alone)")
	}
	if out.Request.Ratio, err = parseRatio(v); err != nil {
		return nil, err
	}
	return out, nil
}

// parseTransferForm parses the fields of an uploaded loop's transfer.
func parseTransferForm(q url.Values) (*TransferQuery, error) {
	if err := checkFields(q, []string{"from", "to"}, nil); err != nil {
		return nil, err
	}
	out := &TransferQuery{}
	from, okF := one(q, "from")
	to, okT := one(q, "to")
	if !okF || !okT {
		return nil, badRequest("from and to are required: the loop's instrument and the instrument whose decoder renders it, e.g. from=drum&to=bass")
	}
	var err error
	if out.Request.From, err = checkInstrument("from", from); err != nil {
		return nil, err
	}
	if out.Request.To, err = checkInstrument("to", to); err != nil {
		return nil, err
	}
	return out, nil
}

func parseRatio(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, badRequest("ratio %q is not a number: give a mix ratio in [0, 1] (0 = loop a alone, 1 = loop b alone)", clip(v))
	}
	return f, checkRatio(f)
}

func checkRatio(r float64) error {
	if math.IsNaN(r) || r < 0 || r > 1 {
		return invalidParam("ratio is %v: give a mix ratio in [0, 1] (0 = loop a alone, 1 = loop b alone)", r)
	}
	return nil
}
