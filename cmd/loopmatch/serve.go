package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"

	"github.com/loopmatch/loopmatch/audio"
	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/onnx"
	"github.com/loopmatch/loopmatch/query"
	"github.com/loopmatch/loopmatch/recommend"
	"github.com/loopmatch/loopmatch/vectordb"
)

// serveOptions are the flags of `loopmatch serve` (and of the server `demo` starts).
type serveOptions struct {
	addr                 string
	apiKeysFile          string
	rateLimit            float64
	rateBurst            int
	maxUploadMB          int64
	maxUploadSeconds     float64
	maxUploadFiles       int
	requestTimeout       time.Duration
	uploadTimeout        time.Duration
	shutdownGrace        time.Duration
	uploadsDir           string
	previewCacheMB       int64
	intraOpThreads       int
	collectionCheckEvery time.Duration
	uploadsMaxMB         int64
	bodyReadTimeout      time.Duration
	allowedHosts         []string
	corsOrigins          []string
}

func (o *serveOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", envOr("LOOPMATCH_ADDR", "127.0.0.1:8080"), "listen address (use :8080 to listen on every interface)")
	f.StringVar(&o.apiKeysFile, "api-keys-file", envOr("LOOPMATCH_API_KEYS_FILE", ""), "file with one API key per line; when set every /v1 route needs a key")
	f.Float64Var(&o.rateLimit, "rate-limit", 20, "requests per second allowed per API key (with --api-keys-file)")
	f.IntVar(&o.rateBurst, "rate-burst", 40, "burst allowed per API key above --rate-limit")
	f.Int64Var(&o.maxUploadMB, "max-upload-mb", query.DefaultMaxUploadBytes>>20, "largest uploaded audio file, MiB")
	f.Float64Var(&o.maxUploadSeconds, "max-upload-seconds", query.DefaultMaxUploadDuration.Seconds(), "longest uploaded audio, seconds")
	f.IntVar(&o.maxUploadFiles, "max-upload-files", query.DefaultMaxUploadFiles, "most files in one POST /v1/loops")
	f.DurationVar(&o.requestTimeout, "request-timeout", query.DefaultRequestTimeout, "deadline of each request")
	f.DurationVar(&o.uploadTimeout, "upload-timeout", query.DefaultUploadTimeout, "deadline of a POST /v1/loops (encodes whole files)")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 15*time.Second, "how long SIGINT/SIGTERM waits for requests in flight")
	f.StringVar(&o.uploadsDir, "uploads-dir", envOr("LOOPMATCH_UPLOADS_DIR", ""), "folder that keeps loops uploaded with POST /v1/loops (empty: uploads are refused with 501)")
	f.Int64Var(&o.previewCacheMB, "preview-cache-mb", query.DefaultPreviewCacheBytes>>20, "memory for decoded previews, MiB")
	f.IntVar(&o.intraOpThreads, "intra-op-threads", 1, "ONNX Runtime threads per inference (requests already run in parallel; 0 = one per core)")
	f.DurationVar(&o.collectionCheckEvery, "collection-check-every", 5*time.Second, "how often a collection's bundle id is re-checked")
	f.Int64Var(&o.uploadsMaxMB, "uploads-max-mb", 1024, "quota of the --uploads-dir folder, MiB (0: none); a POST /v1/loops that would pass it gets 507")
	f.DurationVar(&o.bodyReadTimeout, "body-read-timeout", query.DefaultBodyReadTimeout, "how long a client may take to send a request body")
	f.StringSliceVar(&o.allowedHosts, "allowed-hosts", nil, "Host names the server answers to (default: localhost, 127.0.0.1 and ::1 when --addr is loopback, any otherwise; * for any)")
	f.StringSliceVar(&o.corsOrigins, "cors-origin", nil, "browser origins (scheme://host[:port]) allowed to call the API from another site (default: none)")
}

// hosts is the Host allowlist the flags ask for; nil allows any.
func (o *serveOptions) hosts() []string {
	switch {
	case len(o.allowedHosts) == 1 && o.allowedHosts[0] == "*":
		return nil
	case len(o.allowedHosts) > 0:
		out := make([]string, len(o.allowedHosts))
		for i, h := range o.allowedHosts {
			out[i] = strings.ToLower(strings.Trim(strings.TrimSpace(h), "[]"))
		}
		return out
	case query.IsLoopback(o.addr):
		return query.LoopbackHosts()
	}
	return nil
}

// service is everything a query needs, opened once: the ONNX Runtime, the bundle's
// models, the store and the engine over them.
type service struct {
	bundle *onnx.Bundle
	rt     *onnx.Runtime
	models *recommend.Models
	// anomaly models by instrument, for what the service ingests (uploads, demo, eval)
	anomaly map[string]*onnx.Anomaly
	store   vectordb.Store
	engine  *recommend.Engine
	closed  bool
}

// openService loads the bundle and its models and opens the store. metrics may be nil.
func openService(ctx context.Context, g *globalOptions, threads int, checkEvery time.Duration, obs recommend.Observer) (*service, error) {
	b, err := onnx.LoadBundle(g.bundle)
	if err != nil {
		return nil, exitError{code: 2, err: fmt.Errorf("%w (build or fetch the bundle: make models; or point --bundle at one)", err)}
	}
	rt, err := onnx.NewRuntime(onnx.RuntimeOptions{IntraOpThreads: threads})
	if err != nil {
		return nil, exitError{code: 2, err: err}
	}
	s := &service{bundle: b, rt: rt, anomaly: map[string]*onnx.Anomaly{}}
	// the recommendation models and the anomaly models side by side: opening the graphs is
	// most of the start (an instrument without an anomaly model is stored without scores)
	openers := []func() error{
		func() (err error) { s.models, err = recommend.OpenModels(rt, b); return err },
		func() (err error) { s.anomaly, err = rt.OpenAnomalies(b); return err },
	}
	if err := onnx.Concurrently(openers...); err != nil {
		s.Close()
		return nil, exitError{code: 2, err: err}
	}
	store, err := openStore(ctx, g.store)
	if err != nil {
		s.Close()
		return nil, exitError{code: 2, err: fmt.Errorf("open the store %s: %w", g.store, err)}
	}
	s.store = store
	cfg := s.models.Config(b, s.store)
	cfg.CollectionCheckEvery = checkEvery
	cfg.Library = g.store
	if obs != nil {
		cfg.Observer = obs
	}
	if s.engine, err = recommend.NewEngine(cfg); err != nil {
		s.Close()
		return nil, exitError{code: 2, err: err}
	}
	return s, nil
}

// ingestConfig is the ingest configuration over the service's encoders.
func (s *service) ingestConfig(storeName string, log *slog.Logger) ingest.Config {
	encs := map[string]onnx.Graph{}
	for inst, m := range s.models.Encoders {
		encs[inst] = m
	}
	cfg := ingest.Config{Store: s.store, StoreName: storeName, BundleID: s.bundle.ID(), EncoderIDs: s.bundle.EncoderIDs(), SampleRate: s.bundle.SampleRate,
		WindowSeconds: s.bundle.WindowSeconds, Encoders: encs, Anomaly: s.anomaly, Rules: ingest.DefaultRules(), Limits: audio.DefaultLimits(), Logger: log}
	if sm := s.models.SampleMatch; sm != nil {
		id, _ := s.bundle.OneShotEncoderID()
		cfg.OneShots = &ingest.OneShots{Encoder: sm.OneShot, EncoderID: id, Kind: s.models.OneShotKind}
	}
	return cfg
}

// ingestEmbedders are the named embedders as ingest takes them, by instrument, sharing
// the service's sessions.
func (s *service) ingestEmbedders(names []string) map[string][]*onnx.Embedder {
	out := map[string][]*onnx.Embedder{}
	for inst, byName := range s.models.EmbedderSessions(s.bundle, names) {
		for _, name := range names {
			if e := byName[name]; e != nil {
				out[inst] = append(out[inst], e)
			}
		}
	}
	return out
}

// Close releases in the reverse order of opening: sessions before the runtime.
func (s *service) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	for _, a := range s.anomaly {
		errs = append(errs, a.Close())
	}
	if s.models != nil {
		errs = append(errs, s.models.Close())
	}
	if s.rt != nil {
		errs = append(errs, s.rt.Close())
	}
	return errors.Join(errs...)
}

// newServer builds the HTTP server over a service.
func newServer(s *service, o *serveOptions, metrics *query.Metrics, log *slog.Logger, storeName string) (*query.Server, error) {
	cfg := query.ServerConfig{Engine: s.engine, Logger: log, Metrics: metrics,
		MaxUploadBytes: o.maxUploadMB << 20, MaxUploadDuration: time.Duration(o.maxUploadSeconds * float64(time.Second)),
		MaxUploadFiles: o.maxUploadFiles, RequestTimeout: o.requestTimeout, UploadTimeout: o.uploadTimeout,
		PreviewCacheBytes: o.previewCacheMB << 20, BodyReadTimeout: o.bodyReadTimeout,
		AllowedHosts: o.hosts(), AllowedOrigins: o.corsOrigins}
	if o.apiKeysFile != "" {
		keys, err := query.LoadAPIKeys(o.apiKeysFile, o.rateLimit, o.rateBurst)
		if err != nil {
			return nil, exitError{code: 2, err: err}
		}
		cfg.APIKeys = keys
	}
	if o.uploadsDir != "" {
		dir, err := filepath.Abs(o.uploadsDir)
		if err != nil {
			return nil, exitError{code: 2, err: err}
		}
		cfg.Ingester = uploadIngester{&ingest.Uploads{Dir: dir, MaxBytes: o.uploadsMaxMB << 20, Config: s.ingestConfig(storeName, log),
			Embedders: s.ingestEmbedders(s.bundle.EmbedderNames())}}
	}
	return query.NewServer(cfg)
}

func newServeCmd(g *globalOptions) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the recommend API",
		Long: `Serves the producer's web page at / and the HTTP API: POST /v1/recommend, GET /v1/loops/{instrument}/{id}[/audio],
GET /v1/previews/{key}.wav, POST /v1/loops, GET /v1/collections, /healthz, /readyz, /metrics
and /openapi.yaml. SIGINT/SIGTERM stop it gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return serve(cmd.Context(), g, o, log, cmd.OutOrStdout(), nil, nil)
		},
	}
	o.flags(cmd)
	return cmd
}

// serve runs the server until ctx ends. before (may be nil) runs once the service is
// open (the demo ingests there); ready (may be nil) once the server listens.
func serve(ctx context.Context, g *globalOptions, o *serveOptions, log *slog.Logger, out io.Writer,
	before func(*service) error, ready func(*service, net.Addr)) error {
	// Gin's debug mode prints every route on start; the access log says what matters.
	gin.SetMode(gin.ReleaseMode)
	metrics := query.NewMetrics()
	svc, err := openService(ctx, g, o.intraOpThreads, o.collectionCheckEvery, metrics)
	if err != nil {
		return err
	}
	defer svc.Close()
	if before != nil {
		if err := before(svc); err != nil {
			return err
		}
	}
	srv, err := newServer(svc, o, metrics, log, g.store)
	if err != nil {
		return err
	}
	// The first stage's mapped seeds are made while the server starts, not by the first
	// request; shutdown cancels and waits for it before the models and store close.
	warmCtx, cancelWarm := context.WithCancel(ctx)
	warmed := make(chan struct{})
	defer func() { cancelWarm(); <-warmed }()
	go func() {
		defer close(warmed)
		t0 := time.Now()
		seeds, err := svc.engine.WarmHub(warmCtx)
		if err != nil && warmCtx.Err() == nil {
			log.Warn("hubness correction: mapping the library's seeds failed; requests try again", "err", err)
		} else if len(seeds) > 0 {
			log.Info("hubness correction ready", "mapped_seeds", fmt.Sprint(seeds), "seconds", time.Since(t0).Seconds())
		}
	}()
	return srv.ListenAndServe(ctx, o.addr, o.shutdownGrace, func(a net.Addr) {
		log.Info("serving", "addr", a.String(), "bundle", svc.bundle.ID(), "store", g.store,
			"pairs", fmt.Sprint(svc.engine.Pairs()), "api_keys", o.apiKeysFile != "", "uploads", o.uploadsDir != "")
		if ready != nil {
			ready(svc, a)
		}
	})
}
