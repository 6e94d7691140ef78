package query

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// Problem is an RFC 9457 problem details object, extended with the request id so a
// user can quote it and an operator can find the log line.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Errors lists individual findings (OpenAPI validation) when there are several.
	Errors []string `json:"errors,omitempty"`
}

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// problemType makes a problem type URI. A URN identifies the kind of problem without
// promising a web page behind it (RFC 9457 3.1.1 allows non-resolvable URIs).
func problemType(slug string) string { return "urn:loopmatch:problem:" + slug }

// problem kinds; the slug is the stable identifier clients switch on.
var problemTitles = map[string]string{
	"invalid-request":        "The request is malformed",
	"invalid-json":           "The request body is not valid JSON for this endpoint",
	"unsupported-media-type": "The request's content type is not accepted here",
	"payload-too-large":      "The upload is too large",
	"unprocessable-audio":    "The uploaded audio cannot be used as a seed",
	"unsupported-audio":      "The uploaded file is not a supported audio format",
	"invalid-parameters":     "A parameter is out of range or inconsistent",
	"not-found":              "No such resource",
	"seed-not-found":         "The seed loop is not stored",
	"unknown-loops":          "A listed loop is not stored",
	"no-mapper":              "No mapper for this instrument pair",
	"rerank-unavailable":     "The bundle cannot rerank this request",
	"hub-unavailable":        "The bundle has no hubness correction",
	"not-ingested":           "The collection has not been ingested",
	"bundle-mismatch":        "The collection was encoded with another model bundle",
	"preview-unavailable":    "The preview cannot be decoded by this bundle",
	"encoder-unavailable":    "The bundle has no encoder for this instrument",
	"unknown-instrument":     "The bundle knows no such instrument",
	"not-implemented":        "Not available in this build",
	"unauthorized":           "An API key is required",
	"rate-limited":           "Too many requests for this API key",
	"method-not-allowed":     "Method not allowed on this resource",
	"timeout":                "The request took too long",
	"unavailable":            "A backing service is unavailable",
	"file-changed":           "The stored loop's file changed since it was ingested",
	"internal":               "Internal server error",
	"body-timeout":           "The request body did not arrive in time",
	"forbidden-host":         "This server does not answer to that host name",
	"cross-origin":           "A state-changing request from another site is refused",
	"range-not-satisfiable":  "The requested byte range is not in the file",
	"uploads-full":           "The uploads folder is full",
}

// writeProblem sends a problem and aborts the chain.
func writeProblem(c *gin.Context, status int, slug, detail string) {
	p := Problem{Type: problemType(slug), Title: problemTitles[slug], Status: status, Detail: detail,
		Instance: c.Request.URL.Path, RequestID: requestID(c)}
	if p.Title == "" {
		p.Title = http.StatusText(status)
	}
	sendProblem(c, p)
}

func sendProblem(c *gin.Context, p Problem) {
	c.Header("Content-Type", ProblemContentType)
	c.Header("Cache-Control", "no-store")
	b, _ := json.Marshal(p)
	c.Abort()
	c.Status(p.Status)
	if c.Request.Method != http.MethodHead {
		_, _ = c.Writer.Write(b)
	}
}

// errorStatus maps the Engine's, audio's and the store's errors to a status and slug.
func errorStatus(err error) (int, string) {
	switch {
	case errors.Is(err, recommend.ErrInvalid), errors.Is(err, recommend.ErrInvalidGenerate):
		return http.StatusUnprocessableEntity, "invalid-parameters"
	case errors.Is(err, recommend.ErrUnknownInstrument):
		return http.StatusUnprocessableEntity, "unknown-instrument"
	case errors.Is(err, recommend.ErrNoEncoder):
		return http.StatusNotImplemented, "encoder-unavailable"
	case errors.Is(err, recommend.ErrUnknownEmbedder):
		return http.StatusUnprocessableEntity, "unknown-embedder"
	case errors.Is(err, recommend.ErrEmbedderNotIngested):
		return http.StatusConflict, "embedder-not-ingested"
	case errors.Is(err, recommend.ErrNoScorer):
		return http.StatusUnprocessableEntity, "rerank-unavailable"
	case errors.Is(err, recommend.ErrNoHubness):
		return http.StatusUnprocessableEntity, "hub-unavailable"
	case errors.Is(err, recommend.ErrNoContextModel):
		return http.StatusUnprocessableEntity, "context-model-unavailable"
	case errors.Is(err, recommend.ErrNoMapper):
		return http.StatusUnprocessableEntity, "no-mapper"
	case errors.Is(err, recommend.ErrSeedNotFound):
		return http.StatusNotFound, "seed-not-found"
	case errors.Is(err, recommend.ErrNotIngested):
		return http.StatusNotFound, "not-ingested"
	case errors.Is(err, recommend.ErrEncoderMismatch):
		return http.StatusConflict, "bundle-mismatch"
	case errors.Is(err, recommend.ErrNoDecoder):
		return http.StatusNotImplemented, "preview-unavailable"
	case errors.Is(err, audio.ErrTooLarge), errors.Is(err, audio.ErrTooLong):
		return http.StatusRequestEntityTooLarge, "payload-too-large"
	case errors.Is(err, audio.ErrUnsupported):
		return http.StatusUnsupportedMediaType, "unsupported-audio"
	case errors.Is(err, audio.ErrCorrupt), errors.Is(err, audio.ErrTruncated), errors.Is(err, audio.ErrTooShort),
		errors.Is(err, audio.ErrSilent), errors.Is(err, audio.ErrNonFinite):
		return http.StatusUnprocessableEntity, "unprocessable-audio"
	case errors.Is(err, vectordb.ErrInvalid), errors.Is(err, audio.ErrOffset):
		return http.StatusUnprocessableEntity, "invalid-parameters"
	case errors.Is(err, vectordb.ErrUnavailable), errors.Is(err, vectordb.ErrLocked):
		return http.StatusServiceUnavailable, "unavailable"
	case errors.Is(err, ErrUploadsFull):
		return http.StatusInsufficientStorage, "uploads-full"
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "timeout"
	}
	return http.StatusInternalServerError, "internal"
}
