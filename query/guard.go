package query

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// The guards run before any handler reads a request: which hosts and origins may talk
// to the server at all, and how many body bytes a route may be sent, enforced before
// the OpenAPI validator or a parser reads a byte.

// LoopbackHosts are the host names a server bound to a loopback address answers to by
// default: a browser page from elsewhere that rebinds its own name to 127.0.0.1 (DNS
// rebinding) sends its own name in Host, and is refused.
func LoopbackHosts() []string { return []string{"localhost", "127.0.0.1", "::1"} }

// IsLoopback reports whether a listen address (host:port) binds only to loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostGuard refuses a Host outside AllowedHosts (when the list is set).
func (s *Server) hostGuard(c *gin.Context) {
	if len(s.cfg.AllowedHosts) == 0 {
		c.Next()
		return
	}
	host := c.Request.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if !slices.Contains(s.cfg.AllowedHosts, host) {
		writeProblem(c, http.StatusForbidden, "forbidden-host",
			fmt.Sprintf("this server answers to %s, not to Host %q: use one of those names, or start it with --allowed-hosts", strings.Join(s.cfg.AllowedHosts, ", "), clip(c.Request.Host)))
		return
	}
	c.Next()
}

// stateChanging are the methods a cross-site page must not send: a form or fetch from
// another site could otherwise store uploads with the visitor's access to this server.
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// originGuard refuses state-changing requests from other origins (Origin, and
// Sec-Fetch-Site from browsers that send it), unless AllowedOrigins lists the origin;
// it answers CORS preflights for those origins only. Clients that are not browsers send
// neither header and pass.
func (s *Server) originGuard(c *gin.Context) {
	origin := c.GetHeader("Origin")
	allowed := origin != "" && slices.Contains(s.cfg.AllowedOrigins, origin)
	if allowed {
		c.Header("Access-Control-Allow-Origin", origin)
		c.Header("Vary", "Origin")
		if c.Request.Method == http.MethodOptions {
			c.Header("Access-Control-Allow-Methods", "GET, HEAD, POST")
			c.Header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-API-Key, X-Request-ID, Range")
			c.Header("Access-Control-Max-Age", "600")
			c.AbortWithStatus(http.StatusNoContent)
			return
		}
	}
	if !stateChanging(c.Request.Method) || allowed {
		c.Next()
		return
	}
	if site := c.GetHeader("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		writeProblem(c, http.StatusForbidden, "cross-origin",
			fmt.Sprintf("a %s from another site (Sec-Fetch-Site: %s) is refused: start the server with --cors-origin ORIGIN to allow a page of yours", c.Request.Method, site))
		return
	}
	if origin != "" && !sameOrigin(origin, c.Request) {
		writeProblem(c, http.StatusForbidden, "cross-origin",
			fmt.Sprintf("a %s from origin %q is refused: start the server with --cors-origin %s to allow it", c.Request.Method, clip(origin), clip(origin)))
		return
	}
	c.Next()
}

// sameOrigin reports whether an Origin header names this server: its host:port as the
// request reached it. The scheme is not compared: behind a proxy that ends TLS the
// page's origin is https while the request arrives here as http. "null" (a sandboxed or
// file: page) is never the same.
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// bodyLimit is the most body bytes a request to route may carry, by its media type:
// JSON is small; an upload is bounded per file and the route's file count.
func (s *Server) bodyLimit(route, contentType string) int64 {
	const slack = 64 << 10 // multipart headers and small fields
	mt := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch {
	case mt == "multipart/form-data":
		files := int64(1)
		switch route {
		case "/v1/loops":
			files = int64(s.cfg.MaxUploadFiles)
		case "/v1/interpolate":
			files = 2
		}
		return files*s.cfg.MaxUploadBytes + slack
	case audioContentTypes[mt]:
		return s.cfg.MaxUploadBytes
	}
	return maxJSONBody
}

// bodyGuard bounds the body before anything reads it: a declared length over the
// route's limit is refused at once, without reading a byte; an undeclared (chunked) one
// is cut off at the limit by http.MaxBytesReader. It also gives the body its own read
// deadline, shorter than the handler's, so a client trickling a body cannot hold a
// connection for the server's whole read timeout.
func (s *Server) bodyGuard(route string) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if r.Body == nil || r.Body == http.NoBody {
			c.Next()
			return
		}
		limit := s.bodyLimit(route, r.Header.Get("Content-Type"))
		if r.ContentLength > limit {
			// The unread body is not worth draining: close the connection after answering.
			c.Header("Connection", "close")
			writeProblem(c, http.StatusRequestEntityTooLarge, "payload-too-large",
				fmt.Sprintf("the body is %d bytes, more than the %d this request may carry: send a shorter loop (a seed needs only the first window of audio)", r.ContentLength, limit))
			return
		}
		r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
		if d := s.cfg.BodyReadTimeout; d > 0 {
			rc := http.NewResponseController(c.Writer)
			_ = rc.SetReadDeadline(time.Now().Add(d))
			r.Body = &bodyDeadline{ReadCloser: r.Body, rc: rc}
		}
		c.Next()
	}
}

// bodyDeadline lifts the body's read deadline once the body has been read to its end:
// net/http keeps reading the connection in the background while the handler runs (to
// notice a client that goes away), and a deadline passing then would cancel a long
// handler (an upload's ingest) that has long had its whole body.
type bodyDeadline struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *bodyDeadline) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
