package query

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/singleflight"

	"github.com/loopmatch/loopmatch/recommend"
)

// ServerConfig wires a Server. Zero values take the defaults below.
type ServerConfig struct {
	Engine  *recommend.Engine
	Logger  *slog.Logger
	Metrics *Metrics
	// APIKeys, when set, guards every /v1 route.
	APIKeys *APIKeys
	// Ingester stores uploaded loops (POST /v1/loops); nil answers 501.
	Ingester Ingester
	// MaxUploadBytes bounds an uploaded seed or loop (default 20 MiB); MaxUploadDuration
	// its audio (default 60 s); MaxUploadFiles the files of one POST /v1/loops (default 32).
	MaxUploadBytes    int64
	MaxUploadDuration time.Duration
	MaxUploadFiles    int
	// RequestTimeout is each request's deadline (default 30 s); UploadTimeout that of
	// POST /v1/loops, which encodes whole files (default 5 min).
	RequestTimeout time.Duration
	UploadTimeout  time.Duration
	// PreviewCacheBytes bounds the decoded previews kept in memory (default 64 MiB).
	PreviewCacheBytes int64
	// BodyReadTimeout bounds the time a client may take to send a request's body
	// (default 30 s), apart from the handler's deadline.
	BodyReadTimeout time.Duration
	// AllowedHosts, when set, are the only Host names answered (lower case, no port);
	// LoopbackHosts() for a server bound to loopback.
	AllowedHosts []string
	// AllowedOrigins are the browser origins (scheme://host[:port]) allowed to send
	// state-changing requests from another site, with CORS headers; none by default.
	AllowedOrigins []string
}

// Server is the HTTP API.
type Server struct {
	cfg     ServerConfig
	engine  *recommend.Engine
	log     *slog.Logger
	metrics *Metrics
	api     *apiSpec
	router  *gin.Engine

	// latents maps a preview key to the mapped latent it decodes (small, so kept longer
	// than the decoded audio); previews holds decoded WAV files.
	latents  *LRU[previewLatent]
	previews *LRU[[]byte]
	decodes  singleflight.Group
	// verified remembers files whose content was checked against their id, keyed by
	// path, size and modification time.
	verified *LRU[string]
}

type previewLatent struct {
	instrument string
	z          []float32
}

// Defaults of ServerConfig.
const (
	DefaultMaxUploadBytes    = 20 << 20
	DefaultMaxUploadDuration = 60 * time.Second
	DefaultMaxUploadFiles    = 32
	DefaultRequestTimeout    = 30 * time.Second
	DefaultUploadTimeout     = 5 * time.Minute
	DefaultPreviewCacheBytes = 64 << 20
	DefaultBodyReadTimeout   = 30 * time.Second
	// maxJSONBody bounds a JSON request; a recommend query is well under 1 KiB.
	maxJSONBody = 64 << 10
	// maxFieldBytes bounds one form field of a multipart request.
	maxFieldBytes = 4096
)

const (
	ctxRequestID = "loopmatch.request_id"
	ctxKeyLabel  = "loopmatch.key"
)

// NewServer builds the Gin engine with every route and middleware.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("query: ServerConfig.Engine is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.MaxUploadDuration <= 0 {
		cfg.MaxUploadDuration = DefaultMaxUploadDuration
	}
	if cfg.MaxUploadFiles <= 0 {
		cfg.MaxUploadFiles = DefaultMaxUploadFiles
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = DefaultUploadTimeout
	}
	if cfg.PreviewCacheBytes <= 0 {
		cfg.PreviewCacheBytes = DefaultPreviewCacheBytes
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	api, err := loadAPISpec()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, engine: cfg.Engine, log: cfg.Logger, metrics: cfg.Metrics, api: api,
		latents:  NewLRU(cfg.PreviewCacheBytes/8, func(p previewLatent) int64 { return int64(4*len(p.z) + len(p.instrument)) }),
		previews: NewLRU(cfg.PreviewCacheBytes, func(b []byte) int64 { return int64(len(b)) }),
		verified: NewLRU(4<<20, func(s string) int64 { return int64(len(s)) }),
	}
	if err := s.routes(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler is the HTTP handler (the Gin engine).
func (s *Server) Handler() http.Handler { return s.router }

func (s *Server) routes() error {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// Never trust forwarding headers unless an operator configures proxies: the client
	// address in logs must not be spoofable.
	if err := r.SetTrustedProxies(nil); err != nil {
		return err
	}
	r.Use(s.requestID, s.recover, s.accessLog, s.hostGuard, s.originGuard, s.deadline)
	r.NoRoute(func(c *gin.Context) {
		writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("no endpoint %s %s: see GET /openapi.yaml for the API", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		writeProblem(c, http.StatusMethodNotAllowed, "method-not-allowed", fmt.Sprintf("%s is not allowed on %s: see GET /openapi.yaml", c.Request.Method, c.Request.URL.Path))
	})

	r.GET("/healthz", s.healthz)
	r.HEAD("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	r.GET("/metrics", gin.WrapH(s.metrics.Handler()))
	r.GET("/openapi.yaml", s.openapi)
	if err := s.webRoutes(r); err != nil {
		return err
	}

	v1 := r.Group("/v1")
	if s.cfg.APIKeys != nil {
		v1.Use(s.cfg.APIKeys.middleware())
	}
	type route struct {
		method, gin, api string
		h                gin.HandlerFunc
	}
	for _, rt := range []route{
		{http.MethodPost, "/recommend", "/v1/recommend", s.recommend},
		{http.MethodPost, "/similar", "/v1/similar", s.similar},
		{http.MethodPost, "/profile", "/v1/profile", s.profile},
		{http.MethodGet, "/collections", "/v1/collections", s.collections},
		{http.MethodPost, "/loops", "/v1/loops", s.uploadLoops},
		{http.MethodGet, "/loops/:instrument", "/v1/loops/{instrument}", s.listLoops},
		{http.MethodGet, "/loops/:instrument/:id", "/v1/loops/{instrument}/{id}", s.loop},
		{http.MethodGet, "/loops/:instrument/:id/audio", "/v1/loops/{instrument}/{id}/audio", s.loopAudio},
		{http.MethodHead, "/loops/:instrument/:id/audio", "/v1/loops/{instrument}/{id}/audio", s.loopAudio},
		{http.MethodPost, "/interpolate", "/v1/interpolate", s.interpolate},
		{http.MethodPost, "/transfer", "/v1/transfer", s.transfer},
		{http.MethodGet, "/previews/:file", "/v1/previews/{file}", s.preview},
		{http.MethodHead, "/previews/:file", "/v1/previews/{file}", s.preview},
	} {
		validate, err := s.api.validator(rt.method, rt.api, s.fail)
		if err != nil {
			return err
		}
		v1.Handle(rt.method, rt.gin, s.bodyGuard(rt.api), validate, rt.h)
	}
	s.router = r
	return nil
}

// requestIDPattern keeps a client's X-Request-ID out of logs unless it is plain.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// recover turns a panic into a logged 500 that carries the request id.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler { //nolint:errorlint // net/http compares it the same way
			panic(v)
		}
		s.log.Error("panic while serving a request", "request_id", requestID(c), "method", c.Request.Method,
			"path", c.Request.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if !c.Writer.Written() {
			writeProblem(c, http.StatusInternalServerError, "internal",
				"the server hit a bug while answering; it is logged under this request_id: report it with that id")
		}
		c.Abort()
	}()
	c.Next()
}

func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	c.Next()
	s.metrics.inFlight.Dec()
	d := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	s.metrics.observeRequest(route, c.Request.Method, status, d)
	lvl := slog.LevelInfo
	if status >= 500 {
		lvl = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", requestID(c)), slog.String("method", c.Request.Method),
		slog.String("route", route), slog.String("path", c.Request.URL.Path), slog.Int("status", status),
		slog.Duration("duration", d), slog.Int("bytes", max(c.Writer.Size(), 0)), slog.String("client", c.ClientIP()),
	}
	if k := c.GetString(ctxKeyLabel); k != "" {
		attrs = append(attrs, slog.String("api_key", k))
	}
	if len(c.Errors) > 0 {
		attrs = append(attrs, slog.String("error", c.Errors.String()))
	}
	s.log.LogAttrs(c.Request.Context(), lvl, "request", attrs...)
}

// deadline gives each request its time budget; the handlers pass the context down to
// inference and the store, which stop when it expires.
func (s *Server) deadline(c *gin.Context) {
	d := s.cfg.RequestTimeout
	if c.Request.Method == http.MethodPost && c.Request.URL.Path == "/v1/loops" {
		d = s.cfg.UploadTimeout
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), d)
	defer cancel()
	c.Request = c.Request.WithContext(ctx)
	c.Next()
}

// fail answers an error from the engine, audio or the store, logging what is the
// server's fault.
func (s *Server) fail(c *gin.Context, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeProblem(c, ae.status, ae.slug, ae.detail)
		return
	}
	status, slug := errorStatus(err)
	_ = c.Error(err)
	detail := err.Error()
	if status == http.StatusInternalServerError {
		// The error may name server paths or internals: it goes to the log, and the
		// answer carries the request id that finds it there.
		s.log.Error("request failed", "request_id", requestID(c), "err", err)
		detail = "the server failed to answer; the cause is logged under this request_id: report it with that id"
	}
	if slug == "timeout" {
		hint := "narrow it (smaller k, no mmr_lambda)"
		if c.Request.URL.Path != "/v1/recommend" {
			hint = "decoding audio is slow on a busy server; the preview cache keeps what finished"
		}
		detail = fmt.Sprintf("the request did not finish within its deadline: retry, or %s: %v", hint, err)
	}
	writeProblem(c, status, slug, detail)
}

// apiError is a request problem found by the server itself (parsing, limits).
type apiError struct {
	status       int
	slug, detail string
}

func (e *apiError) Error() string { return e.detail }

func badRequest(format string, a ...any) *apiError {
	return &apiError{http.StatusBadRequest, "invalid-request", fmt.Sprintf(format, a...)}
}

func (s *Server) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 when the store answers and the models are loaded: a load balancer
// sends traffic only then.
func (s *Server) readyz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ok := true
	if _, err := s.engine.Store().Collections(ctx); err != nil {
		checks["store"] = "unreachable: " + err.Error()
		ok = false
	} else {
		checks["store"] = "ok"
	}
	pairs := s.engine.Pairs()
	if len(pairs) == 0 {
		checks["models"] = "no mapper loaded"
		ok = false
	} else {
		checks["models"] = "ok"
	}
	if !ok {
		p := Problem{Type: problemType("unavailable"), Title: problemTitles["unavailable"], Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("not ready: %v", checks), Instance: c.Request.URL.Path, RequestID: requestID(c)}
		sendProblem(c, p)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready", "checks": checks, "bundle": s.engine.BundleID()})
}

func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openapiYAML)
}

// ListenAndServe serves on addr until ctx is cancelled (SIGINT/SIGTERM in the
// command), then shuts down gracefully, letting requests in flight finish within
// grace. ready, if not nil, receives the bound address once listening.
func (s *Server) ListenAndServe(ctx context.Context, addr string, grace time.Duration, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another server using the port? pick one with --addr)", addr, err)
	}
	return s.Serve(ctx, ln, grace, ready)
}

// Serve is ListenAndServe on a listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration, ready func(net.Addr)) error {
	hs := s.HTTPServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing requests in flight", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", grace, err)
	}
	return nil
}

// HTTPServer is an http.Server with the read, write and idle timeouts set: a slow or
// stalled client cannot hold a connection forever.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		// Uploads are bounded in size; two minutes is enough for MaxUploadBytes on a
		// slow link and short enough to shed a stalled one.
		ReadTimeout: 2 * time.Minute,
		// The slowest handler is an upload ingest; its deadline is UploadTimeout.
		WriteTimeout:   max(s.cfg.UploadTimeout, s.cfg.RequestTimeout) + 10*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
