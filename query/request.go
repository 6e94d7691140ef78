package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The request toolkit: every handler that reads a body reads it through these, so the
// media type, the bounds, strict JSON and multipart parsing mean the same on every route.

// requestMediaType parses Content-Type; a missing or unparsable one is 415 naming what
// the route accepts.
func requestMediaType(r *http.Request, accepted string) (string, map[string]string, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return "", nil, &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type", "send Content-Type: " + accepted}
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type", fmt.Sprintf("Content-Type %q does not parse: %v", ct, err)}
	}
	return mt, params, nil
}

// unsupportedMediaType is the 415 for a parsed type the route does not take.
func unsupportedMediaType(mt, accepted string) *apiError {
	return &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type",
		fmt.Sprintf("Content-Type %q is not accepted: use %s", mt, accepted)}
}

// audioContentTypes are accepted as a raw audio body. application/octet-stream is here
// because many clients send it for any file; the content is sniffed anyway.
var audioContentTypes = map[string]bool{
	"audio/wav": true, "audio/x-wav": true, "audio/wave": true, "audio/vnd.wave": true,
	"audio/aiff": true, "audio/x-aiff": true, "audio/flac": true, "audio/x-flac": true,
	"audio/ogg": true, "audio/vorbis": true, "application/octet-stream": true,
}

// jsonBody reads a JSON request's body (at most maxJSONBody bytes). Its parameters are
// in the body, so a query string is an error rather than silently ignored.
func jsonBody(r *http.Request) ([]byte, error) {
	if len(r.URL.RawQuery) > 0 {
		return nil, badRequest("a JSON request carries its parameters in the body, not the query string (%q)", clip(r.URL.RawQuery))
	}
	return readBounded(r.Body, maxJSONBody)
}

// decodeStrict decodes one JSON object into v. Unknown fields are errors: a misspelt
// field must not silently fall back to something else.
func decodeStrict(body []byte, v any, what string) error {
	if !utf8.Valid(body) {
		return &apiError{http.StatusBadRequest, "invalid-json", "the body is not UTF-8 text"}
	}
	if err := checkJSONShape(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &apiError{http.StatusBadRequest, "invalid-json", "the body is not a valid " + what + " request: " + jsonErr(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{http.StatusBadRequest, "invalid-json", "the body has data after the JSON object: send one object"}
	}
	return nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.EOF):
		return "the body is empty: send a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early"
	}
	return err.Error()
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "float64":
		return "a number"
	case "ptr":
		return "a value of another type"
	}
	return "a " + k
}

// queryParams parses the query string of a raw upload, whose parameters travel there.
func queryParams(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("the query string does not parse: %v", err)
	}
	return q, nil
}

// rawBody reads a raw upload (the file is the whole body), at most limit bytes.
func rawBody(r *http.Request, limit int64, what string) ([]byte, error) {
	body, err := readBounded(r.Body, limit)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, badRequest("the body is empty: send %s's file as the body", what)
	}
	return body, nil
}

// uploadRoute describes a route that takes JSON (stored loops by id) or one uploaded
// file: multipart (the file part "audio" beside the fields) or a raw audio body (the
// parameters in the query string).
type uploadRoute[T any] struct {
	accepted string // the accepted forms, for messages
	maxParts int
	// what names the file ("the seed loop"); missing says how to send it.
	what, missing string
	fromJSON      func([]byte) (T, error)
	// fromParams checks the parameters; for a raw body it runs before the file is
	// read, so a bad parameter costs no upload.
	fromParams func(url.Values) (T, error)
	setUpload  func(T, []byte)
}

// parse reads a request of the route.
func (u uploadRoute[T]) parse(r *http.Request, maxUpload int64) (T, error) {
	var zero T
	mt, params, err := requestMediaType(r, u.accepted)
	if err != nil {
		return zero, err
	}
	switch {
	case mt == "application/json":
		body, err := jsonBody(r)
		if err != nil {
			return zero, err
		}
		return u.fromJSON(body)
	case mt == "multipart/form-data":
		form, files, err := readForm(r, params["boundary"], formLimits{files: map[string]int{"audio": 1},
			fileBytes: maxUpload, fieldBytes: maxFieldBytes, maxParts: u.maxParts})
		if err != nil {
			return zero, err
		}
		upload := fileNamed(files, "audio")
		if upload == nil {
			return zero, badRequest("no \"audio\" part: %s", u.missing)
		}
		out, err := u.fromParams(form)
		if err != nil {
			return zero, err
		}
		u.setUpload(out, upload)
		return out, nil
	case audioContentTypes[mt]:
		q, err := queryParams(r)
		if err != nil {
			return zero, err
		}
		out, err := u.fromParams(q)
		if err != nil {
			return zero, err
		}
		body, err := rawBody(r, maxUpload, u.what)
		if err != nil {
			return zero, err
		}
		u.setUpload(out, body)
		return out, nil
	}
	return zero, unsupportedMediaType(mt, u.accepted)
}

// readBounded reads at most limit bytes; more is 413. Up to inMemoryBody bytes are read
// into memory; a longer body is spooled to a temporary file while it arrives and read
// back only once it has proved to be within the limit, so a body that turns out too
// large (a chunked 600 MB upload) has cost a little disk, never its size in memory.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	head, err := io.ReadAll(io.LimitReader(r, min(limit, inMemoryBody)+1))
	if err != nil {
		return nil, readErr(err, limit)
	}
	if int64(len(head)) <= min(limit, inMemoryBody) {
		return head, nil
	}
	if int64(len(head)) > limit {
		return nil, tooLarge(limit)
	}
	f, err := os.CreateTemp("", "loopmatch-body-*")
	if err != nil {
		return nil, fmt.Errorf("spool the request body: %w (check that the temporary folder is writable)", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(head); err != nil {
		return nil, fmt.Errorf("spool the request body: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit-int64(len(head))+1))
	if err != nil {
		return nil, readErr(err, limit)
	}
	total := int64(len(head)) + n
	if total > limit {
		return nil, tooLarge(limit)
	}
	body := make([]byte, total)
	if _, err := f.ReadAt(body, 0); err != nil {
		return nil, fmt.Errorf("read back the spooled request body: %w", err)
	}
	return body, nil
}

// inMemoryBody is how much of a body readBounded keeps in memory before spooling.
const inMemoryBody = 1 << 20

// readErr is the answer to a body that failed to arrive: too large, too slow, or cut.
func readErr(err error, limit int64) error {
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	case errors.As(err, &ne) && ne.Timeout():
		return &apiError{http.StatusRequestTimeout, "body-timeout", "the body did not arrive in time: send it faster, or a shorter file"}
	}
	return badRequest("reading the body failed: %v", err)
}

func tooLarge(limit int64) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, "payload-too-large",
		fmt.Sprintf("the body exceeds %d bytes: send a shorter loop (a seed needs only the first window of audio)", limit)}
}

// formLimits says what one multipart/form-data body may hold.
type formLimits struct {
	// files names the file parts and how many of each may come.
	files map[string]int
	// fileBytes bounds each file part, fieldBytes each other part.
	fileBytes, fieldBytes int64
	// fields names the other parts; nil takes any name (the caller checks them).
	fields []string
	// maxParts bounds the number of parts.
	maxParts int
	// queryOK lets parameters travel in the query string too (otherwise it is an error:
	// they belong in the form).
	queryOK bool
}

// formFile is one file part.
type formFile struct {
	name, filename string
	data           []byte
}

// readForm streams a multipart/form-data body: file parts and small fields, each
// bounded, nothing spooled to disk. A file part may be empty only never: that is an
// error naming the part.
func readForm(r *http.Request, boundary string, lim formLimits) (url.Values, []formFile, error) {
	if !lim.queryOK && len(r.URL.RawQuery) > 0 {
		return nil, nil, badRequest("a multipart request carries its parameters as form fields, not in the query string")
	}
	if boundary == "" {
		return nil, nil, badRequest("multipart/form-data needs a boundary parameter in Content-Type")
	}
	mr := multipart.NewReader(r.Body, boundary)
	form := url.Values{}
	var files []formFile
	count := map[string]int{}
	for n := 0; ; n++ {
		if n >= lim.maxParts {
			return nil, nil, badRequest("too many parts: send the files %s and a few fields", quoteList(mapKeys(lim.files)))
		}
		p, err := mr.NextPart()
		if err == io.EOF {
			// Read the epilogue to the body's end, so the body counts as read (and its
			// read deadline is lifted, see bodyDeadline).
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxFieldBytes))
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, nil, tooLarge(mbe.Limit)
			}
			return nil, nil, badRequest("the multipart body does not parse: %v", err)
		}
		name := p.FormName()
		max, isFile := lim.files[name]
		switch {
		case name == "":
			return nil, nil, badRequest("a multipart part has no form name: name the file parts %s", quoteList(mapKeys(lim.files)))
		case isFile:
			if count[name] == max {
				if max == 1 {
					return nil, nil, badRequest("more than one %q part: send each file once", name)
				}
				return nil, nil, &apiError{http.StatusRequestEntityTooLarge, "payload-too-large", fmt.Sprintf("more than %d %q parts in one request: split it", max, name)}
			}
			count[name]++
			data, err := readBounded(p, lim.fileBytes)
			if err != nil {
				return nil, nil, err
			}
			if len(data) == 0 {
				return nil, nil, badRequest("the %q part %q is empty", name, clip(p.FileName()))
			}
			files = append(files, formFile{name: name, filename: p.FileName(), data: data})
		case lim.fields != nil && !slices.Contains(lim.fields, name):
			return nil, nil, badRequest("unknown part %q: send %s and the file parts %s", clip(name), strings.Join(lim.fields, ", "), quoteList(mapKeys(lim.files)))
		default:
			v, err := readBounded(p, lim.fieldBytes)
			if err != nil {
				return nil, nil, badRequest("form field %q is longer than %d bytes", clip(name), lim.fieldBytes)
			}
			form.Add(name, string(v))
		}
	}
	return form, files, nil
}

// fileNamed is the data of the one file part called name, or nil.
func fileNamed(files []formFile, name string) []byte {
	for _, f := range files {
		if f.name == name {
			return f.data
		}
	}
	return nil
}

func mapKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	sort.Strings(q)
	return strings.Join(q, " and ")
}

// checkFields refuses parameters outside allowed and parameters given more than once,
// except the lists in repeatable.
func checkFields(q url.Values, allowed, repeatable []string) error {
	for name, vs := range q {
		if !slices.Contains(allowed, name) {
			return badRequest("unknown parameter %q: the parameters are %s", clip(name), strings.Join(allowed, ", "))
		}
		if len(vs) > 1 && !slices.Contains(repeatable, name) {
			return badRequest("parameter %q is given %d times: give it once", name, len(vs))
		}
	}
	return nil
}

// one is a parameter's value, trimmed, and whether it was given.
func one(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return strings.TrimSpace(vs[0]), true
}

// Bounds of a JSON body's shape, checked by a linear scan before any decoder sees it:
// deep nesting costs a decoder (and the OpenAPI validator) far more than its bytes.
const (
	maxJSONDepth  = 16
	maxJSONTokens = 4096
)

// checkJSONShape refuses JSON nested deeper than maxJSONDepth or with more than
// maxJSONTokens values, in one pass over the bytes that decodes nothing. What is not
// JSON at all is left to the decoder to describe.
func checkJSONShape(b []byte) error {
	depth, tokens := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
			tokens++
		case '[', '{':
			depth++
			tokens++
			if depth > maxJSONDepth {
				return &apiError{http.StatusBadRequest, "invalid-json", fmt.Sprintf("the JSON is nested more than %d levels deep: a request is a flat object with short lists", maxJSONDepth)}
			}
		case ']', '}':
			depth--
		case ',':
			tokens++
		}
		if tokens > maxJSONTokens {
			return &apiError{http.StatusBadRequest, "invalid-json", fmt.Sprintf("the JSON has more than %d values: a request is a flat object with short lists", maxJSONTokens)}
		}
	}
	return nil
}
