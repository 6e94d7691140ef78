package query

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// APIKeys checks keys and rate-limits each key separately.
type APIKeys struct {
	// digests of the keys: comparing fixed-size digests lets every comparison take the
	// same time whatever the candidate's length.
	digests [][sha256.Size]byte
	limit   rate.Limit
	burst   int

	mu       sync.Mutex
	limiters map[int]*rate.Limiter
	// failures limits wrong or missing keys per client address, so keys cannot be
	// guessed at the speed of the network.
	failures *failureLimiter
}

// failureLimiter allows each client address a burst of failed authentications, then
// one per interval. It forgets quiet addresses, so its memory stays bounded.
type failureLimiter struct {
	mu      sync.Mutex
	perAddr map[string]*rate.Limiter
	limit   rate.Limit
	burst   int
	max     int
}

// Failed authentications allowed per client address: a burst, then one a second.
const (
	failedAuthBurst     = 10
	failedAuthPerSecond = 1
	failedAuthAddrs     = 10000
)

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{perAddr: map[string]*rate.Limiter{}, limit: failedAuthPerSecond, burst: failedAuthBurst, max: failedAuthAddrs}
}

// blocked reports whether addr has used up its failures (without spending one).
func (f *failureLimiter) blocked(addr string) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.perAddr[addr]
	if l == nil {
		return 0, false
	}
	r := l.Reserve()
	d := r.Delay()
	r.Cancel()
	return d, d > 0
}

// failed spends one of addr's failures.
func (f *failureLimiter) failed(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.perAddr[addr]
	if l == nil {
		if len(f.perAddr) >= f.max {
			// Forget addresses whose bucket has refilled: they are as good as new.
			for a, x := range f.perAddr {
				if x.Tokens() >= float64(f.burst) {
					delete(f.perAddr, a)
				}
			}
			if len(f.perAddr) >= f.max {
				clear(f.perAddr)
			}
		}
		l = rate.NewLimiter(f.limit, f.burst)
		f.perAddr[addr] = l
	}
	l.Allow()
}

// MinKeyLength keeps guessable keys out of a keys file.
const MinKeyLength = 16

// ParseAPIKeys reads one key per line; blank lines and lines starting with # are
// ignored. perSecond and burst bound each key's request rate (perSecond <= 0: no limit).
func ParseAPIKeys(text string, perSecond float64, burst int) (*APIKeys, error) {
	k := &APIKeys{limit: rate.Limit(perSecond), burst: burst, limiters: map[int]*rate.Limiter{}, failures: newFailureLimiter()}
	if perSecond <= 0 {
		k.limit = rate.Inf
	}
	if k.burst < 1 {
		k.burst = 1
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	seen := map[[sha256.Size]byte]bool{}
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinKeyLength || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("API keys line %d: a key is one word of at least %d characters (generate one with: openssl rand -hex 24)", n, MinKeyLength)
		}
		d := sha256.Sum256([]byte(line))
		if !seen[d] {
			seen[d] = true
			k.digests = append(k.digests, d)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("API keys: %w", err)
	}
	if len(k.digests) == 0 {
		return nil, fmt.Errorf("API keys: no key found: write one key per line")
	}
	return k, nil
}

// LoadAPIKeys reads a keys file (see ParseAPIKeys).
func LoadAPIKeys(path string, perSecond float64, burst int) (*APIKeys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --api-keys-file: %w", err)
	}
	k, err := ParseAPIKeys(string(b), perSecond, burst)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// match returns the key's index, or -1. It compares against every key, without
// stopping at a match, so the time taken says nothing about which key matched.
func (k *APIKeys) match(candidate string) int {
	d := sha256.Sum256([]byte(candidate))
	found := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(d[:], k.digests[i][:]) == 1 {
			found = i
		}
	}
	return found
}

func (k *APIKeys) limiter(i int) *rate.Limiter {
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.limiters[i]
	if l == nil {
		l = rate.NewLimiter(k.limit, k.burst)
		k.limiters[i] = l
	}
	return l
}

// keyLabel names a key in logs without revealing it.
func (k *APIKeys) keyLabel(i int) string { return "key-" + hex.EncodeToString(k.digests[i][:4]) }

// presentedKey reads "Authorization: Bearer KEY" or "X-API-Key: KEY".
func presentedKey(r *http.Request) string {
	if v := r.Header.Get("X-API-Key"); v != "" {
		return strings.TrimSpace(v)
	}
	if v := r.Header.Get("Authorization"); len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// middleware demands a valid key and spends one token of its rate.
func (k *APIKeys) middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		client := c.ClientIP()
		if d, blocked := k.failures.blocked(client); blocked {
			c.Header("Retry-After", strconv.Itoa(max(int(math.Ceil(d.Seconds())), 1)))
			writeProblem(c, http.StatusTooManyRequests, "rate-limited",
				fmt.Sprintf("too many requests with a wrong or missing API key from this address: retry after %s with a valid key", d.Round(time.Millisecond)))
			return
		}
		key := presentedKey(c.Request)
		if key == "" {
			k.failures.failed(client)
			c.Header("WWW-Authenticate", `Bearer realm="loopmatch"`)
			writeProblem(c, http.StatusUnauthorized, "unauthorized",
				"send an API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
			return
		}
		i := k.match(key)
		if i < 0 {
			k.failures.failed(client)
			c.Header("WWW-Authenticate", `Bearer realm="loopmatch", error="invalid_token"`)
			writeProblem(c, http.StatusUnauthorized, "unauthorized", "the API key is not valid: check it against the keys file the server was started with")
			return
		}
		c.Set(ctxKeyLabel, k.keyLabel(i))
		r := k.limiter(i).Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel()
			secs := int(math.Ceil(d.Seconds()))
			c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
			writeProblem(c, http.StatusTooManyRequests, "rate-limited",
				fmt.Sprintf("this key may make %g requests per second (burst %d): retry after %s", float64(k.limit), k.burst, d.Round(time.Millisecond)))
			return
		}
		c.Next()
	}
}
