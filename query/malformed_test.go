package query

import (
	"bytes"
	"fmt"
	"math"
	"mime/multipart"
	"os"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/recommend"
)

// wavOf encodes a tone of the given seconds (amplitude 0 makes silence).
func wavOf(t testing.TB, seconds, amp float64) []byte {
	t.Helper()
	const rate = 2000
	pcm := make([]float32, int(seconds*rate))
	for i := range pcm {
		pcm[i] = float32(amp * math.Sin(2*math.Pi*97*float64(i)/rate))
	}
	var b bytes.Buffer
	if err := audio.EncodeWAV(&b, pcm, rate, audio.PCM16); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// form builds a multipart body: fields as name, value pairs; a name starting with @ is
// a file part.
func form(fields ...string) (string, *bytes.Buffer) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.SetBoundary("loopmatch-test-boundary") // one form, built twice, is the same bytes
	for i := 0; i+1 < len(fields); i += 2 {
		if name, ok := strings.CutPrefix(fields[i], "@"); ok {
			w, _ := mw.CreateFormFile(name, "loop.wav")
			w.Write([]byte(fields[i+1]))
			continue
		}
		mw.WriteField(fields[i], fields[i+1])
	}
	mw.Close()
	return mw.FormDataContentType(), &b
}

// TestMalformedRequests sends many kinds of broken request: each gets a 4xx with
// problem details naming what is wrong, and the server keeps answering afterwards.
func TestMalformedRequests(t *testing.T) {
	be := embeddedBackend(t)
	lib := writeLibrary(t, t.TempDir(), 3, 20)
	b, m := bundleModels(t, testBundle)
	encs := map[string]ingestEncoder{}
	for k, v := range m.Encoders {
		encs[k] = v
	}
	f := newFixture(t, be, lib, func(_ *recommend.Config, s *ServerConfig) {
		s.MaxUploadBytes = 50 << 10
		s.MaxUploadDuration = 5e9 // 5 s
		s.Ingester = uploadIngester{&ingest.Uploads{Dir: t.TempDir(), Config: ingestConfigFor(b, be.store, encs)}}
	})
	seed := f.find("drum", 0).id
	good := func(extra string) string { return fmt.Sprintf(`{"seed_id": %q%s}`, seed, extra) }
	okWAV := wavOf(t, 1, 0.5)
	goodData, _ := os.ReadFile(f.find("drum", 1).path)
	hex64 := strings.Repeat("ab", 32)
	id := f.find("bass", 0).id
	mpCT, mpBody := form("@audio", string(okWAV))
	manyKeys := `["Am"` + strings.Repeat(`, "Am"`, 100) + `]`
	bassA, bassB, drumA, drumB := f.find("bass", 0).id, f.find("bass", 2).id, f.find("drum", 0).id, f.find("drum", 2).id
	interp := func(fields string) string { return fmt.Sprintf(`{"a_id": %q, "b_id": %q%s}`, bassA, bassB, fields) }
	okInterp := interp(`, "instrument": "bass", "ratio": 0.5`)
	ipForm := func(fields ...string) (string, string) {
		c, b := form(fields...)
		return c, b.String()
	}
	transferJSON := func(id, from, to string) string { return fmt.Sprintf(`{"id": %q, "from": %q, "to": %q}`, id, from, to) }
	silentWAV := string(wavOf(t, 1, 0))

	type tc struct {
		name           string
		method, path   string
		ctype, body    string
		hdr            []string
		want           int
		detailContains string
	}
	cases := []tc{
		// JSON recommend
		{"no content type", "POST", "/v1/recommend", "", good(""), nil, 415, "Content-Type"},
		{"text/plain", "POST", "/v1/recommend", "text/plain", good(""), nil, 415, "application/json"},
		{"unparsable content type", "POST", "/v1/recommend", "application/json; ===", good(""), nil, 415, "does not parse"},
		{"image content type", "POST", "/v1/recommend", "image/png", "x", nil, 415, ""},
		{"empty JSON body", "POST", "/v1/recommend", "application/json", "", nil, 400, ""},
		{"truncated JSON", "POST", "/v1/recommend", "application/json", `{"seed_id": "`, nil, 400, ""},
		{"JSON array", "POST", "/v1/recommend", "application/json", `[]`, nil, 400, ""},
		{"JSON null", "POST", "/v1/recommend", "application/json", `null`, nil, 400, ""},
		{"JSON string", "POST", "/v1/recommend", "application/json", `"x"`, nil, 400, ""},
		{"no seed_id", "POST", "/v1/recommend", "application/json", `{}`, nil, 400, "seed_id"},
		{"seed_id number", "POST", "/v1/recommend", "application/json", `{"seed_id": 12}`, nil, 400, "seed_id"},
		{"seed_id not hex", "POST", "/v1/recommend", "application/json", `{"seed_id": "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"}`, nil, 400, "seed_id"},
		{"seed_id short", "POST", "/v1/recommend", "application/json", `{"seed_id": "abc"}`, nil, 400, "seed_id"},
		{"seed_id upper case", "POST", "/v1/recommend", "application/json", `{"seed_id": "` + strings.ToUpper(seed) + `"}`, nil, 400, "seed_id"},
		{"seed_id path traversal", "POST", "/v1/recommend", "application/json", `{"seed_id": "../../../../etc/passwd"}`, nil, 400, "seed_id"},
		{"unknown field", "POST", "/v1/recommend", "application/json", good(`, "kk": 3`), nil, 400, "kk"},
		{"unknown filter field", "POST", "/v1/recommend", "application/json", good(`, "filter": {"bpm": 120}`), nil, 400, "bpm"},
		{"k zero", "POST", "/v1/recommend", "application/json", good(`, "k": 0`), nil, 400, "k"},
		{"k too big", "POST", "/v1/recommend", "application/json", good(`, "k": 201`), nil, 400, "k"},
		{"k negative", "POST", "/v1/recommend", "application/json", good(`, "k": -1`), nil, 400, "k"},
		{"k string", "POST", "/v1/recommend", "application/json", good(`, "k": "10"`), nil, 400, "k"},
		{"k fractional", "POST", "/v1/recommend", "application/json", good(`, "k": 1.5`), nil, 400, "k"},
		{"k huge", "POST", "/v1/recommend", "application/json", good(`, "k": 1e400`), nil, 400, ""},
		{"mmr_lambda zero", "POST", "/v1/recommend", "application/json", good(`, "mmr_lambda": 0`), nil, 400, "mmr_lambda"},
		{"mmr_lambda above one", "POST", "/v1/recommend", "application/json", good(`, "mmr_lambda": 1.5`), nil, 400, "mmr_lambda"},
		{"mmr_lambda string", "POST", "/v1/recommend", "application/json", good(`, "mmr_lambda": "x"`), nil, 400, "mmr_lambda"},
		{"seed_offset negative", "POST", "/v1/recommend", "application/json", good(`, "seed_offset": -1`), nil, 400, "seed_offset"},
		{"seed_offset string", "POST", "/v1/recommend", "application/json", good(`, "seed_offset": "4"`), nil, 400, "seed_offset"},
		{"seed_offset absurd", "POST", "/v1/recommend", "application/json", good(`, "seed_offset": 1e9`), nil, 400, "seed_offset"},
		{"seed_offset past the seed", "POST", "/v1/recommend", "application/json", good(`, "seed_offset": 599`), nil, 422, "seed_offset"},
		{"min_bpm negative", "POST", "/v1/recommend", "application/json", good(`, "filter": {"min_bpm": -1}`), nil, 400, "min_bpm"},
		{"max_bpm absurd", "POST", "/v1/recommend", "application/json", good(`, "filter": {"max_bpm": 5000}`), nil, 400, "max_bpm"},
		{"bpm range empty", "POST", "/v1/recommend", "application/json", good(`, "filter": {"min_bpm": 130, "max_bpm": 120}`), nil, 422, "swap"},
		{"keys not a list", "POST", "/v1/recommend", "application/json", good(`, "filter": {"keys": "Am"}`), nil, 400, "keys"},
		{"key not a key", "POST", "/v1/recommend", "application/json", good(`, "filter": {"keys": ["H#"]}`), nil, 422, "H#"},
		{"too many keys", "POST", "/v1/recommend", "application/json", good(`, "filter": {"keys": ` + manyKeys + `}`), nil, 400, "keys"},
		{"empty pack name", "POST", "/v1/recommend", "application/json", good(`, "filter": {"packs": [""]}`), nil, 400, "packs"},
		{"pack name too long", "POST", "/v1/recommend", "application/json", good(`, "filter": {"exclude_packs": ["` + strings.Repeat("p", 201) + `"]}`), nil, 400, "exclude_packs"},
		{"pack with control characters", "POST", "/v1/recommend", "application/json", good(`, "filter": {"packs": ["a\u0000b"]}`), nil, 422, "pack"},
		{"from not a name", "POST", "/v1/recommend", "application/json", good(`, "from": "Drum!"`), nil, 400, "from"},
		{"to without mapper", "POST", "/v1/recommend", "application/json", good(`, "to": "guitar"`), nil, 422, "drum->bass"},
		{"reversed pair", "POST", "/v1/recommend", "application/json", good(`, "from": "bass", "to": "drum"`), nil, 422, "drum->bass"},
		{"trailing garbage", "POST", "/v1/recommend", "application/json", good("") + " x", nil, 400, ""},
		{"two objects", "POST", "/v1/recommend", "application/json", good("") + good(""), nil, 400, ""},
		{"invalid UTF-8", "POST", "/v1/recommend", "application/json", "{\"seed_id\": \"\xff\xfe\"}", nil, 400, ""},
		{"JSON body too large", "POST", "/v1/recommend", "application/json", good(`, "x": "` + strings.Repeat("a", 70<<10) + `"`), nil, 413, ""},
		{"preview not boolean", "POST", "/v1/recommend", "application/json", good(`, "preview": "yes"`), nil, 400, "preview"},
		{"exclude_seed_pack not boolean", "POST", "/v1/recommend", "application/json", good(`, "filter": {"exclude_seed_pack": "true"}`), nil, 400, "exclude_seed_pack"},
		{"JSON with a query string", "POST", "/v1/recommend?k=5", "application/json", good(""), nil, 400, "query string"},
		{"seed not stored", "POST", "/v1/recommend", "application/json", `{"seed_id": "` + strings.Repeat("0", 32) + `"}`, nil, 404, "ingest"},
		// Raw uploads
		{"raw empty body", "POST", "/v1/recommend", "audio/wav", "", nil, 400, "empty"},
		{"raw not audio", "POST", "/v1/recommend", "audio/wav", "hello, this is not a WAV file at all", nil, 415, ""},
		{"raw truncated WAV", "POST", "/v1/recommend", "audio/wav", string(okWAV[:60]), nil, 422, ""},
		{"raw corrupt WAV header", "POST", "/v1/recommend", "audio/wav", "RIFF\x00\x00\x00\x00WAVEfmt \x02\x00\x00\x00\x01\x00", nil, 422, ""},
		{"raw silent WAV", "POST", "/v1/recommend", "audio/wav", string(wavOf(t, 1, 0)), nil, 422, "silent"},
		{"raw too short WAV", "POST", "/v1/recommend", "audio/wav", string(wavOf(t, 0.01, 0.5)), nil, 422, "short"},
		{"raw too large", "POST", "/v1/recommend", "application/octet-stream", strings.Repeat("x", 51<<10), nil, 413, "bytes"},
		{"raw too long", "POST", "/v1/recommend", "audio/wav", string(wavOf(t, 8, 0.5)), nil, 413, ""},
		{"raw unknown parameter", "POST", "/v1/recommend?foo=1", "audio/wav", string(okWAV), nil, 400, "foo"},
		{"raw k not a number", "POST", "/v1/recommend?k=abc", "audio/wav", string(okWAV), nil, 400, "k"},
		{"raw k zero", "POST", "/v1/recommend?k=0", "audio/wav", string(okWAV), nil, 400, "k"},
		{"raw repeated from", "POST", "/v1/recommend?from=drum&from=bass", "audio/wav", string(okWAV), nil, 400, "from"},
		{"raw no mapper", "POST", "/v1/recommend?from=bass&to=drum", "audio/wav", string(okWAV), nil, 422, "drum->bass"},
		{"raw seed pack unknown", "POST", "/v1/recommend?exclude_seed_pack=true", "audio/wav", string(okWAV), nil, 422, "exclude_seed_pack"},
		{"raw bad boolean", "POST", "/v1/recommend?preview=maybe", "audio/wav", string(okWAV), nil, 400, "preview"},
		{"raw bad mmr", "POST", "/v1/recommend?mmr_lambda=NaN", "audio/wav", string(goodData), nil, 400, "mmr_lambda"},
		{"raw bad seed_offset", "POST", "/v1/recommend?seed_offset=NaN", "audio/wav", string(goodData), nil, 400, "seed_offset"},
		{"raw seed_offset past the upload", "POST", "/v1/recommend?seed_offset=500", "audio/wav", string(okWAV), nil, 422, "offset"},
		// Multipart uploads
		{"multipart without boundary", "POST", "/v1/recommend", "multipart/form-data", "x", nil, 400, "boundary"},
		{"multipart without audio", "POST", "/v1/recommend", ct(form("k", "5")), body(form("k", "5")), nil, 400, "audio"},
		{"multipart two audio parts", "POST", "/v1/recommend", ct(form("@audio", "a", "@audio", "b")), body(form("@audio", "a", "@audio", "b")), nil, 400, "audio"},
		{"multipart broken", "POST", "/v1/recommend", "multipart/form-data; boundary=zz", "--zz\r\nContent-Disposition: form-data; name=\"audio\"\r\n\r\nabc", nil, 400, ""},
		{"multipart unknown field", "POST", "/v1/recommend", ct(form("@audio", string(okWAV), "colour", "red")), body(form("@audio", string(okWAV), "colour", "red")), nil, 400, "colour"},
		{"multipart k out of range", "POST", "/v1/recommend", ct(form("@audio", string(okWAV), "k", "999")), body(form("@audio", string(okWAV), "k", "999")), nil, 422, "k"},
		{"multipart with a query string", "POST", "/v1/recommend?k=3", mpCT, mpBody.String(), nil, 400, "query string"},
		// Interpolate
		{"interpolate no content type", "POST", "/v1/interpolate", "", okInterp, nil, 415, "Content-Type"},
		{"interpolate text/plain", "POST", "/v1/interpolate", "text/plain", okInterp, nil, 415, "application/json"},
		{"interpolate raw audio body", "POST", "/v1/interpolate", "audio/wav", string(okWAV), nil, 415, "multipart"},
		{"interpolate empty body", "POST", "/v1/interpolate", "application/json", "", nil, 400, ""},
		{"interpolate truncated JSON", "POST", "/v1/interpolate", "application/json", `{"a_id": "`, nil, 400, ""},
		{"interpolate ratio missing", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass"`), nil, 400, "ratio"},
		{"interpolate ratio negative", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": -0.1`), nil, 400, "ratio"},
		{"interpolate ratio above one", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": 1.5`), nil, 400, "ratio"},
		{"interpolate ratio string", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": "0.5"`), nil, 400, "ratio"},
		{"interpolate ratio null", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": null`), nil, 400, "ratio"},
		{"interpolate ratio NaN", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": NaN`), nil, 400, ""},
		{"interpolate ratio huge", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": 1e400`), nil, 400, ""},
		{"interpolate instrument missing", "POST", "/v1/interpolate", "application/json", interp(`, "ratio": 0.5`), nil, 400, "instrument"},
		{"interpolate b_id missing", "POST", "/v1/interpolate", "application/json", fmt.Sprintf(`{"instrument": "bass", "a_id": %q, "ratio": 0.5}`, bassA), nil, 400, "b_id"},
		{"interpolate a_id not hex", "POST", "/v1/interpolate", "application/json", fmt.Sprintf(`{"instrument": "bass", "a_id": "../x", "b_id": %q, "ratio": 0.5}`, bassB), nil, 400, "a_id"},
		{"interpolate unknown field", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "bass", "ratio": 0.5, "mix": 1`), nil, 400, "mix"},
		{"interpolate instrument not a name", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "Bass!", "ratio": 0.5`), nil, 400, "instrument"},
		{"interpolate unknown instrument", "POST", "/v1/interpolate", "application/json", interp(`, "instrument": "guitar", "ratio": 0.5`), nil, 422, "knows bass, drum"},
		{"interpolate instrument without decoder", "POST", "/v1/interpolate", "application/json", fmt.Sprintf(`{"instrument": "drum", "a_id": %q, "b_id": %q, "ratio": 0.5}`, drumA, drumB), nil, 501, "no drum decoder"},
		{"interpolate unknown loop", "POST", "/v1/interpolate", "application/json", fmt.Sprintf(`{"instrument": "bass", "a_id": %q, "b_id": %q, "ratio": 0.5}`, bassA, strings.Repeat("0", 32)), nil, 404, "loop b"},
		{"interpolate loop of another instrument", "POST", "/v1/interpolate", "application/json", fmt.Sprintf(`{"instrument": "bass", "a_id": %q, "b_id": %q, "ratio": 0.5}`, drumA, bassB), nil, 404, "loop a"},
		{"interpolate JSON with a query string", "POST", "/v1/interpolate?ratio=1", "application/json", okInterp, nil, 400, "query string"},
		{"interpolate JSON body too large", "POST", "/v1/interpolate", "application/json", interp(`, "x": "` + strings.Repeat("a", 70<<10) + `"`), nil, 413, ""},
		{"interpolate multipart without boundary", "POST", "/v1/interpolate", "multipart/form-data", "x", nil, 400, "boundary"},
		{"interpolate multipart ratio NaN", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "NaN", "a_id", bassA, "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "NaN", "a_id", bassA, "b_id", bassB)), nil, 400, "ratio"},
		{"interpolate multipart ratio above one", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "2", "a_id", bassA, "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "2", "a_id", bassA, "b_id", bassB)), nil, 422, "[0, 1]"},
		{"interpolate multipart ratio missing", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "a_id", bassA, "b_id", bassB)), second(ipForm("instrument", "bass", "a_id", bassA, "b_id", bassB)), nil, 400, "ratio"},
		{"interpolate multipart loop twice", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", string(okWAV), "a_id", bassA, "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", string(okWAV), "a_id", bassA, "b_id", bassB)), nil, 400, "twice"},
		{"interpolate multipart loop missing", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", string(okWAV))), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", string(okWAV))), nil, 400, "loop b"},
		{"interpolate multipart two a files", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", "x", "@a", "y", "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", "x", "@a", "y", "b_id", bassB)), nil, 400, "more than one"},
		{"interpolate multipart unknown field", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "a_id", bassA, "b_id", bassB, "colour", "red")), second(ipForm("instrument", "bass", "ratio", "0.5", "a_id", bassA, "b_id", bassB, "colour", "red")), nil, 400, "colour"},
		{"interpolate multipart upload too large", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", strings.Repeat("x", 51<<10), "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", strings.Repeat("x", 51<<10), "b_id", bassB)), nil, 413, "bytes"},
		{"interpolate multipart silent upload", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", silentWAV, "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", silentWAV, "b_id", bassB)), nil, 422, "silent"},
		{"interpolate multipart upload not audio", "POST", "/v1/interpolate", first(ipForm("instrument", "bass", "ratio", "0.5", "@a", "hello, not a WAV file at all", "b_id", bassB)), second(ipForm("instrument", "bass", "ratio", "0.5", "@a", "hello, not a WAV file at all", "b_id", bassB)), nil, 415, ""},
		{"interpolate multipart upload without decoder", "POST", "/v1/interpolate", first(ipForm("instrument", "drum", "ratio", "0.5", "@a", string(okWAV), "b_id", drumB)), second(ipForm("instrument", "drum", "ratio", "0.5", "@a", string(okWAV), "b_id", drumB)), nil, 501, "decoder"},
		{"GET on interpolate", "GET", "/v1/interpolate", "", "", nil, 405, "GET"},
		// Transfer
		{"transfer no content type", "POST", "/v1/transfer", "", transferJSON(drumA, "drum", "bass"), nil, 415, "Content-Type"},
		{"transfer text/plain", "POST", "/v1/transfer", "text/plain", transferJSON(drumA, "drum", "bass"), nil, 415, "application/json"},
		{"transfer JSON null", "POST", "/v1/transfer", "application/json", `null`, nil, 400, ""},
		{"transfer to missing", "POST", "/v1/transfer", "application/json", fmt.Sprintf(`{"id": %q, "from": "drum"}`, drumA), nil, 400, "to"},
		{"transfer id missing", "POST", "/v1/transfer", "application/json", `{"from": "drum", "to": "bass"}`, nil, 400, "id"},
		{"transfer id not hex", "POST", "/v1/transfer", "application/json", transferJSON("nothex", "drum", "bass"), nil, 400, "id"},
		{"transfer unknown field", "POST", "/v1/transfer", "application/json", `{"id": "` + drumA + `", "from": "drum", "to": "bass", "ratio": 1}`, nil, 400, "ratio"},
		{"transfer unknown instrument", "POST", "/v1/transfer", "application/json", transferJSON(drumA, "guitar", "bass"), nil, 422, "guitar"},
		{"transfer to without decoder", "POST", "/v1/transfer", "application/json", transferJSON(bassA, "bass", "drum"), nil, 501, "no drum decoder"},
		{"transfer unknown loop", "POST", "/v1/transfer", "application/json", transferJSON(strings.Repeat("0", 32), "drum", "bass"), nil, 404, "drum collection"},
		{"transfer loop of another instrument", "POST", "/v1/transfer", "application/json", transferJSON(bassA, "drum", "bass"), nil, 404, "drum collection"},
		{"transfer raw empty body", "POST", "/v1/transfer?from=drum&to=bass", "audio/wav", "", nil, 400, "empty"},
		{"transfer raw without to", "POST", "/v1/transfer?from=drum", "audio/wav", string(okWAV), nil, 400, "to"},
		{"transfer raw unknown parameter", "POST", "/v1/transfer?from=drum&to=bass&k=3", "audio/wav", string(okWAV), nil, 400, "k"},
		{"transfer raw repeated from", "POST", "/v1/transfer?from=drum&from=bass&to=bass", "audio/wav", string(okWAV), nil, 400, "from"},
		{"transfer raw bad instrument", "POST", "/v1/transfer?from=Drum!&to=bass", "audio/wav", string(okWAV), nil, 400, "from"},
		{"transfer raw not audio", "POST", "/v1/transfer?from=drum&to=bass", "audio/wav", "hello, this is not a WAV file at all", nil, 415, ""},
		{"transfer raw silent", "POST", "/v1/transfer?from=drum&to=bass", "audio/wav", silentWAV, nil, 422, "silent"},
		{"transfer raw too large", "POST", "/v1/transfer?from=drum&to=bass", "application/octet-stream", strings.Repeat("x", 51<<10), nil, 413, "bytes"},
		{"transfer raw too long", "POST", "/v1/transfer?from=drum&to=bass", "audio/wav", string(wavOf(t, 8, 0.5)), nil, 413, ""},
		{"transfer raw to without decoder", "POST", "/v1/transfer?from=bass&to=drum", "audio/wav", string(okWAV), nil, 501, "decoder"},
		{"transfer multipart without audio", "POST", "/v1/transfer", first(ipForm("from", "drum", "to", "bass")), second(ipForm("from", "drum", "to", "bass")), nil, 400, "audio"},
		{"transfer multipart two audio parts", "POST", "/v1/transfer", first(ipForm("from", "drum", "to", "bass", "@audio", "a", "@audio", "b")), second(ipForm("from", "drum", "to", "bass", "@audio", "a", "@audio", "b")), nil, 400, "audio"},
		{"transfer multipart with a query string", "POST", "/v1/transfer?to=bass", first(ipForm("from", "drum", "to", "bass", "@audio", string(okWAV))), second(ipForm("from", "drum", "to", "bass", "@audio", string(okWAV))), nil, 400, "query string"},
		{"GET on transfer", "GET", "/v1/transfer", "", "", nil, 405, "GET"},
		// Routing
		{"GET on recommend", "GET", "/v1/recommend", "", "", nil, 405, "GET"},
		{"unknown route", "POST", "/v1/nope", "", "", nil, 404, "/v1/nope"},
		{"DELETE collections", "DELETE", "/v1/collections", "", "", nil, 405, ""},
		// Loops and audio
		{"loop id not an id", "GET", "/v1/loops/bass/notanid", "", "", nil, 400, "id"},
		{"loop instrument upper case", "GET", "/v1/loops/BASS/" + id, "", "", nil, 400, "instrument"},
		{"loop unknown instrument", "GET", "/v1/loops/guitar/" + id, "", "", nil, 404, "guitar"},
		{"loop unknown id", "GET", "/v1/loops/bass/" + strings.Repeat("0", 32), "", "", nil, 404, "no bass loop"},
		{"audio path traversal", "GET", "/v1/loops/bass/..%2f..%2fetc%2fpasswd/audio", "", "", nil, 404, ""},
		{"audio unknown id", "GET", "/v1/loops/bass/" + strings.Repeat("1", 32) + "/audio", "", "", nil, 404, ""},
		{"audio bad range", "GET", "/v1/loops/bass/" + id + "/audio", "", "", []string{"Range", "bytes=999999-"}, 416, "range"},
		{"audio range not a range", "GET", "/v1/loops/bass/" + id + "/audio", "", "", []string{"Range", "bytes=abc"}, 416, "bytes=abc"},
		// Previews
		{"preview key not hex", "GET", "/v1/previews/xyz.wav", "", "", nil, 400, "file"},
		{"preview wrong extension", "GET", "/v1/previews/" + hex64 + ".mp3", "", "", nil, 400, "file"},
		{"preview unknown key", "GET", "/v1/previews/" + hex64 + ".wav", "", "", nil, 404, "preview"},
		// Uploads into a collection
		{"upload as JSON", "POST", "/v1/loops", "application/json", `{}`, nil, 415, "multipart"},
		{"upload without instrument", "POST", "/v1/loops", ct(form("@file", string(okWAV))), body(form("@file", string(okWAV))), nil, 400, "instrument"},
		{"upload bad instrument", "POST", "/v1/loops", ct(form("instrument", "Bass!", "@file", string(okWAV))), body(form("instrument", "Bass!", "@file", string(okWAV))), nil, 400, "instrument"},
		{"upload instrument without encoder", "POST", "/v1/loops", ct(form("instrument", "guitar", "@file", string(okWAV))), body(form("instrument", "guitar", "@file", string(okWAV))), nil, 422, "guitar"},
		{"upload bpm not a number", "POST", "/v1/loops", ct(form("instrument", "bass", "bpm", "fast", "@file", string(okWAV))), body(form("instrument", "bass", "bpm", "fast", "@file", string(okWAV))), nil, 422, "bpm"},
		{"upload bad key", "POST", "/v1/loops", ct(form("instrument", "bass", "key", "Q", "@file", string(okWAV))), body(form("instrument", "bass", "key", "Q", "@file", string(okWAV))), nil, 422, "key"},
		{"upload no files", "POST", "/v1/loops", ct(form("instrument", "bass")), body(form("instrument", "bass")), nil, 400, "file"},
		{"upload unknown part", "POST", "/v1/loops", ct(form("instrument", "bass", "@sample", "x")), body(form("instrument", "bass", "@sample", "x")), nil, 400, "sample"},
		{"upload file too large", "POST", "/v1/loops", ct(form("instrument", "bass", "@file", strings.Repeat("x", 51<<10))), body(form("instrument", "bass", "@file", strings.Repeat("x", 51<<10))), nil, 413, ""},
		{"upload bpm NaN", "POST", "/v1/loops", ct(form("instrument", "bass", "bpm", "NaN", "@file", string(okWAV))), body(form("instrument", "bass", "bpm", "NaN", "@file", string(okWAV))), nil, 422, "bpm"},
		{"upload bpm below one", "POST", "/v1/loops", ct(form("instrument", "bass", "bpm", "1e-300", "@file", string(okWAV))), body(form("instrument", "bass", "bpm", "1e-300", "@file", string(okWAV))), nil, 422, "bpm"},
		{"upload bpm infinite", "POST", "/v1/loops", ct(form("instrument", "bass", "bpm", "+Inf", "@file", string(okWAV))), body(form("instrument", "bass", "bpm", "+Inf", "@file", string(okWAV))), nil, 422, "bpm"},
		{"WAV sent as JSON", "POST", "/v1/recommend", "application/json", string(okWAV), nil, 400, "invalid character"},
		{"JSON 10000 deep", "POST", "/v1/recommend", "application/json", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), nil, 400, "nested"},
		{"interpolate JSON 10000 deep", "POST", "/v1/interpolate", "application/json", `{"a_id": ` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`, nil, 400, "nested"},
		{"transfer JSON 10000 deep", "POST", "/v1/transfer", "application/json", strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000), nil, 400, "nested"},
		{"JSON too many values", "POST", "/v1/recommend", "application/json", "[" + strings.Repeat("1,", 5000) + "1]", nil, 400, "values"},
		{"declared body over the limit", "POST", "/v1/recommend", "audio/wav", strings.Repeat("x", 60<<10), []string{"X-Test", "declared"}, 413, "bytes"},
		{"upload field twice", "POST", "/v1/loops", ct(form("instrument", "bass", "instrument", "drum", "@file", "x")), body(form("instrument", "bass", "instrument", "drum", "@file", "x")), nil, 400, "twice"},
	}
	if len(cases) < 50 {
		t.Fatalf("only %d kinds of malformed request", len(cases))
	}
	kinds := map[string]bool{}
	for _, c := range cases {
		if kinds[c.name] {
			t.Fatalf("duplicate case %q", c.name)
		}
		kinds[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			code, h, raw := f.do(c.method, c.path, c.ctype, strings.NewReader(c.body), c.hdr...)
			p := checkProblem(t, code, h, raw, c.want)
			if !strings.Contains(strings.ToLower(p.Detail), strings.ToLower(c.detailContains)) {
				t.Errorf("detail %q does not mention %q", p.Detail, c.detailContains)
			}
		})
	}
	t.Logf("%d kinds of malformed request", len(cases))
	// Still healthy and still answering real queries.
	if code, _, _ := f.do("GET", "/healthz", "", nil); code != 200 {
		t.Fatalf("healthz %d after the malformed requests", code)
	}
	if code, r, raw := f.recommendJSON(good(`, "k": 3`)); code != 200 || len(r.Results) != 3 {
		t.Fatalf("recommend after the malformed requests: %d %s", code, raw)
	}
	if n := gauge(t, f.metrics, "loopmatch_http_requests_in_flight"); n != 0 {
		t.Errorf("%v requests still in flight", n)
	}
}

func ct(ctype string, _ *bytes.Buffer) string { return ctype }
func first(a, _ string) string                { return a }
func second(_, b string) string               { return b }
func body(_ string, b *bytes.Buffer) string   { return b.String() }

func gauge(t testing.TB, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
