package loopid

import (
	"strconv"
	"strings"
)

// A loop longer than the model's window is stored as its first window in the
// instrument's collection (so listings, counts and ids are those of loops) and its
// further windows in a companion collection, as rows WindowID(id, k), k >= 1.

// WindowsSuffix turns a collection name into its companion collection of windows.
const WindowsSuffix = "__windows"

// WindowsCollection names the companion collection of a collection.
func WindowsCollection(collection string) string { return collection + WindowsSuffix }

// MaxWindow bounds a window index, so an id names at most this many windows.
const MaxWindow = 9999

// WindowID is the id of window k (1..MaxWindow) of loop id: "id#k".
func WindowID(id string, k int) string { return id + "#" + strconv.Itoa(k) }

// ParseWindowID splits a window row's id into its loop's id and window index; ok is
// false for anything WindowID does not make (so a loop id parses as not a window).
func ParseWindowID(s string) (id string, k int, ok bool) {
	i := strings.LastIndexByte(s, '#')
	if i <= 0 || i == len(s)-1 || len(s)-i-1 > 4 || s[i+1] == '0' {
		return "", 0, false
	}
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return "", 0, false
		}
	}
	k, err := strconv.Atoi(s[i+1:])
	if err != nil || k < 1 || k > MaxWindow {
		return "", 0, false
	}
	return s[:i], k, true
}
