package query

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/gin-gonic/gin"
)

// openapiYAML is the hand-written API description, served at /openapi.yaml and used to
// validate requests. It is OpenAPI 3.0.3, not 3.1: kin-openapi v0.133.0, the
// validator, does not load 3.1 documents yet (its README: "OpenAPI v3.1: Soon!").
//
//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns the embedded document (a copy).
func OpenAPI() []byte { return append([]byte(nil), openapiYAML...) }

type apiSpec struct {
	doc *openapi3.T
}

// loadAPISpec parses and validates the embedded document.
func loadAPISpec() (*apiSpec, error) {
	l := openapi3.NewLoader()
	doc, err := l.LoadFromData(openapiYAML)
	if err != nil {
		return nil, fmt.Errorf("query: the embedded openapi.yaml does not parse: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("query: the embedded openapi.yaml is not valid OpenAPI: %w", err)
	}
	return &apiSpec{doc: doc}, nil
}

// validator checks requests of one operation against the document: path and query
// parameters always, the body when it is JSON (uploads are parsed and bounded by the
// handlers themselves, which stream them). Gin has already routed the request, so the
// route is known here and no second router is needed.
func (a *apiSpec) validator(method, path string, fail func(*gin.Context, error)) (gin.HandlerFunc, error) {
	item := a.doc.Paths.Value(path)
	if item == nil {
		return nil, fmt.Errorf("query: openapi.yaml has no path %s", path)
	}
	op := item.GetOperation(method)
	if op == nil && method == http.MethodHead {
		op = item.GetOperation(http.MethodGet)
	}
	if op == nil {
		return nil, fmt.Errorf("query: openapi.yaml has no %s %s", method, path)
	}
	// The API-key middleware enforces the security requirements. Left to the validator,
	// checking them reads the whole body into memory (kin-openapi buffers it for each
	// authentication function), whatever its type or size.
	unsecured := *op
	unsecured.Security = &openapi3.SecurityRequirements{}
	route := &routers.Route{Spec: a.doc, Path: path, PathItem: item, Method: method, Operation: &unsecured}
	return func(c *gin.Context) {
		params := map[string]string{}
		for _, p := range c.Params {
			params[p.Key] = p.Value
		}
		opts := &openapi3filter.Options{
			AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
			MultiError:          true,
			SkipSettingDefaults: true,
		}
		ct, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
		if ct != "application/json" || op.RequestBody == nil {
			opts.ExcludeRequestBody = true
		} else {
			// The validator decodes the body into generic values: check its shape first,
			// so deep nesting costs a linear scan, not a decode (bodyGuard bounded it).
			body, err := readBounded(c.Request.Body, maxJSONBody)
			if err == nil {
				err = checkJSONShape(body)
			}
			if err != nil {
				fail(c, err)
				return
			}
			c.Request.Body = io.NopCloser(bytes.NewReader(body))
		}
		// bodyGuard has bounded the body already; the handler reads the copy the
		// validator leaves behind.
		in := &openapi3filter.RequestValidationInput{Request: c.Request, PathParams: params, Route: route, Options: opts}
		err := openapi3filter.ValidateRequest(c.Request.Context(), in)
		if err == nil {
			c.Next()
			return
		}
		writeValidationProblem(c, op, err)
	}, nil
}

// writeValidationProblem turns the validator's findings into one problem that lists
// each of them.
func writeValidationProblem(c *gin.Context, op *openapi3.Operation, err error) {
	var findings []string
	status, slug := http.StatusBadRequest, "invalid-request"
	var walk func(error)
	walk = func(e error) {
		// A RequestError is checked before a MultiError: it wraps the schema errors of
		// one parameter or body, and the parameter's name is what a person needs.
		if re, ok := e.(*openapi3filter.RequestError); ok {
			var mbe *http.MaxBytesError
			switch {
			case errors.As(re.Err, &mbe):
				status, slug = http.StatusRequestEntityTooLarge, "payload-too-large"
			case re.RequestBody != nil && strings.Contains(re.Error(), "Content-Type"):
				status, slug = http.StatusUnsupportedMediaType, "unsupported-media-type"
				var types []string
				if op.RequestBody != nil && op.RequestBody.Value != nil {
					for t := range op.RequestBody.Value.Content {
						types = append(types, t)
					}
				}
				sort.Strings(types)
				findings = append(findings, fmt.Sprintf("Content-Type %q is not accepted here: send %s", c.GetHeader("Content-Type"), strings.Join(types, " or ")))
				return
			case re.RequestBody != nil:
				var se *openapi3.SchemaError
				if !errors.As(re.Err, &se) {
					slug = "invalid-json"
				}
			}
			findings = append(findings, validationMessages(re)...)
			return
		}
		var me openapi3.MultiError
		if errors.As(e, &me) {
			for _, x := range me {
				walk(x)
			}
			return
		}
		findings = append(findings, e.Error())
	}
	walk(err)
	p := Problem{Type: problemType(slug), Title: problemTitles[slug], Status: status,
		Detail: strings.Join(findings, "; ") + " (see GET /openapi.yaml)", Instance: c.Request.URL.Path, RequestID: requestID(c)}
	if len(findings) > 1 {
		p.Errors = findings
	}
	sendProblem(c, p)
}

// validationMessages say which parameter or field is wrong and why, without the
// schema dump the validator's own messages carry.
func validationMessages(re *openapi3filter.RequestError) []string {
	where := "body"
	if re.Parameter != nil {
		where = re.Parameter.In + " parameter " + re.Parameter.Name
	}
	var out []string
	var collect func(error)
	collect = func(e error) {
		var me openapi3.MultiError
		if errors.As(e, &me) {
			for _, x := range me {
				collect(x)
			}
			return
		}
		var se *openapi3.SchemaError
		if errors.As(e, &se) {
			w := where
			if f := strings.Join(se.JSONPointer(), "."); f != "" {
				w += " field " + f
			}
			out = append(out, w+": "+se.Reason)
			return
		}
		if e != nil {
			out = append(out, where+": "+e.Error())
		}
	}
	collect(re.Err)
	if len(out) == 0 {
		out = append(out, where+": "+re.Reason)
	}
	return out
}
