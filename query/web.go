package query

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// webFiles is the producer's page: plain HTML, CSS and JavaScript modules, served as
// they are (no build step), so the binary alone serves it.
//
//go:embed web/index.html web/assets
var webFiles embed.FS

// webTypes are the content types of the page's files, by extension: fixed here rather
// than taken from the system's MIME tables, which differ between machines.
var webTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
}

// webCSP allows the page only its own files and the API: no inline script, no third
// party. blob: is for downloads and dropped files the page turns into object URLs.
const webCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// webFile is one embedded file with what its response needs.
type webFile struct {
	data  []byte
	ctype string
	etag  string
}

// webAssets holds the page's files: index.html and the flat folder assets/.
type webAssets struct {
	index  webFile
	assets map[string]webFile
}

func loadWebAssets() (*webAssets, error) {
	mk := func(name string) (webFile, error) {
		b, err := webFiles.ReadFile(name)
		if err != nil {
			return webFile{}, fmt.Errorf("query: embedded web file %s: %w", name, err)
		}
		ct, ok := webTypes[path.Ext(name)]
		if !ok {
			return webFile{}, fmt.Errorf("query: embedded web file %s has no known content type", name)
		}
		sum := sha256.Sum256(b)
		return webFile{data: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}, nil
	}
	w := &webAssets{assets: map[string]webFile{}}
	var err error
	if w.index, err = mk("web/index.html"); err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(webFiles, "web/assets")
	if err != nil {
		return nil, fmt.Errorf("query: embedded web assets: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			return nil, fmt.Errorf("query: web/assets/%s is a folder: keep the page's assets in one flat folder", e.Name())
		}
		if w.assets[e.Name()], err = mk("web/assets/" + e.Name()); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// webRoutes serves the page at / and its files at /assets/{file}. They stay outside
// /v1, so the page loads without an API key; its calls to /v1 carry the key the user
// types into it.
func (s *Server) webRoutes(r *gin.Engine) error {
	w, err := loadWebAssets()
	if err != nil {
		return err
	}
	page := func(c *gin.Context) { serveWebFile(c, w.index) }
	asset := func(c *gin.Context) {
		f, ok := w.assets[c.Param("file")]
		if !ok {
			writeProblem(c, http.StatusNotFound, "not-found", fmt.Sprintf("no asset %q: the page's files are listed in its HTML at /", clip(c.Param("file"))))
			return
		}
		serveWebFile(c, f)
	}
	r.GET("/", page)
	r.HEAD("/", page)
	r.GET("/assets/:file", asset)
	r.HEAD("/assets/:file", asset)
	return nil
}

// serveWebFile answers with revalidation by ETag: the files change only with the
// binary, and a stale script next to a newer API would be worse than a round trip.
func serveWebFile(c *gin.Context, f webFile) {
	h := c.Writer.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(f.ctype, "text/html") {
		h.Set("Content-Security-Policy", webCSP)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
	}
	serveContent(c, time.Time{}, bytes.NewReader(f.data))
}
