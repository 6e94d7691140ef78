package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
)

// loopIDPattern is a loop id as ingest writes it: the first 32 hex characters of the
// file's sha256.
var loopIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// seedArg resolves the one positional argument of recommend (and of every command that
// takes a seed): a file on disk, else a stored loop's id. A file wins when both could be
// meant, because a producer types the name of a file far more often than an id, and a
// file named like an id is one they put there.
func seedArg(arg string) (id, file string, err error) {
	if arg == "" {
		return "", "", errors.New("the seed is empty: give an audio file or a loop id")
	}
	st, statErr := os.Stat(arg)
	switch {
	case statErr == nil && st.Mode().IsRegular():
		return "", arg, nil
	case statErr == nil && st.IsDir():
		return "", "", fmt.Errorf("seed %s is a folder: give one audio file (or ingest the folder with loopmatch ingest)", arg)
	case statErr == nil:
		return "", "", fmt.Errorf("seed %s is not a regular file: give an audio file or a loop id", arg)
	case loopIDPattern.MatchString(arg):
		return arg, "", nil
	case errors.Is(statErr, fs.ErrNotExist):
		return "", "", fmt.Errorf("seed %q: no such file, and not a loop id (32 hex characters): check the path, or copy an id from loopmatch recommend --json: %w", arg, statErr)
	default:
		return "", "", fmt.Errorf("seed %s: %w: check the file is readable", arg, statErr)
	}
}
