package loopid

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
)

// Len is the length of an id: 32 lower-case hex characters.
const Len = 32

// ID is a loop's identity: the first 32 hex characters of the sha256 of its bytes.
func ID(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("hash the loop's bytes: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil))[:Len], nil
}

// Collection names the vector collection that holds one instrument's loops.
func Collection(instrument string) string { return "loops_" + instrument }

var (
	idPattern         = regexp.MustCompile(`^[0-9a-f]{32}$`)
	instrumentPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
)

// ValidID reports whether s looks like an id (ID's output), whether or not it is stored.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// ValidInstrument reports whether s may name an instrument: lower-case, starting with a
// letter, at most 32 characters of letters, digits and _, so that it is safe in a URL,
// a collection name and a file path.
func ValidInstrument(s string) bool { return instrumentPattern.MatchString(s) }
