package ingest

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Candidate is a regular file found under a root, with the root it was found under
// (metadata inference is relative to that root).
type Candidate struct {
	Root string
	Path string
	Size int64
}

// Walk visits every regular file under the roots in a stable order and sends it to fn.
// Symlinks are followed, but each directory (by device and inode) is entered once, so
// a symlink loop ends instead of recursing forever. A root may also be a single file.
// Unreadable directories are reported through onErr and skipped: one bad folder never
// stops the walk. Walk returns ctx.Err() when cancelled, or fn's first error.
func Walk(ctx context.Context, roots []string, fn func(Candidate) error, onErr func(path string, err error)) error {
	seen := map[fileID]bool{}
	for _, root := range roots {
		abs, err := filepath.Abs(root)
		if err != nil {
			return fmt.Errorf("walk %s: %w", root, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return fmt.Errorf("walk %s: %w: check the path exists and is readable", root, err)
		}
		if !st.IsDir() {
			if st.Mode().IsRegular() {
				if err := fn(Candidate{Root: filepath.Dir(abs), Path: abs, Size: st.Size()}); err != nil {
					return err
				}
			}
			continue
		}
		if err := walkDir(ctx, abs, abs, seen, fn, onErr); err != nil {
			return err
		}
	}
	return nil
}

type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{uint64(st.Dev), uint64(st.Ino)}, true
}

func walkDir(ctx context.Context, root, dir string, seen map[fileID]bool, fn func(Candidate) error, onErr func(string, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st, err := os.Stat(dir)
	if err != nil {
		onErr(dir, err)
		return nil
	}
	if id, ok := idOf(st); ok {
		if seen[id] {
			return nil // already walked: a symlink loop or a second link to the same folder
		}
		seen[id] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		onErr(dir, fmt.Errorf("read folder: %w", err))
		return nil
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.Name() != "" && e.Name()[0] == '.' {
			continue // hidden files and folders (.DS_Store, ._AppleDouble, .git)
		}
		fi, err := os.Stat(p) // follows symlinks
		if err != nil {
			onErr(p, err)
			continue
		}
		switch {
		case fi.IsDir():
			if err := walkDir(ctx, root, p, seen, fn, onErr); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := fn(Candidate{Root: root, Path: p, Size: fi.Size()}); err != nil {
				return err
			}
		}
	}
	return nil
}
