package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/loopmatch/loopmatch/vectordb"
)

const (
	fileName   = "loopmatch.db"
	metaBucket = "collections"
	rowsPrefix = "rows:"
)

// Store is the embedded backend.
type Store struct {
	db  *bolt.DB
	dir string

	wmu sync.Mutex   // one writer: bbolt commit and index update in one order
	mu  sync.RWMutex // guards colls for searches
	// colls is the in-memory index, per collection.
	colls map[string]*index
}

type index struct {
	info vectordb.Collection
	// bucket holds the rows: rowsPrefix+name, or the bucket of the collection that
	// ReplaceCollection renamed into this one (renaming is one metadata write).
	bucket string
	rows   []vectordb.Row // fields without embeddings
	vecs   []float32      // unit vectors, row-major
	pos    map[string]int
	// queue shares scans between concurrent searches (see Search).
	queue scanQueue
}

// Options for Open.
type Options struct {
	// LockTimeout is how long to wait for another process's lock (default 1 s).
	LockTimeout time.Duration
}

// Open opens (creating if needed) the store in dir and loads its index.
func Open(ctx context.Context, dir string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = time.Second
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open embedded store %s: %w (%w): choose a writable folder with --store embedded:DIR", dir, vectordb.ErrUnusable, err)
	}
	path := filepath.Join(dir, fileName)
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: o.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open embedded store %s: %w: another loopmatch (serve or ingest) holds it; stop it or use another --store folder", dir, vectordb.ErrLocked)
		}
		return nil, fmt.Errorf("open embedded store %s: %w (%w): check that the folder is writable and the file is a loopmatch store, or choose another --store folder", path, vectordb.ErrUnusable, err)
	}
	s := &Store{db: db, dir: dir, colls: map[string]*index{}}
	if err := s.load(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

func (s *Store) load(ctx context.Context) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		mb, err := tx.CreateBucketIfNotExists([]byte(metaBucket))
		if err != nil {
			return fmt.Errorf("open embedded store: %w", err)
		}
		return mb.ForEach(func(k, v []byte) error {
			var m meta
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("open embedded store: collection %q metadata: %w", k, err)
			}
			info := m.Collection
			ix := &index{info: info, bucket: m.bucket(string(k)), pos: map[string]int{}}
			rb := tx.Bucket([]byte(ix.bucket))
			if rb != nil {
				// Size the matrix once: growing a 400 MB slice by appending would copy
				// it repeatedly and briefly need twice the memory.
				n := rb.Stats().KeyN
				ix.rows = make([]vectordb.Row, 0, n)
				ix.vecs = make([]float32, 0, n*info.Dim)
				ix.pos = make(map[string]int, n)
				if err := rb.ForEach(func(id, val []byte) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					r, err := decodeRow(val, info.Dim)
					if err != nil {
						return fmt.Errorf("open embedded store: collection %q row %q: %w", k, id, err)
					}
					ix.put(r)
					return nil
				}); err != nil {
					return err
				}
			}
			s.colls[string(k)] = ix
			return nil
		})
	})
}

// meta is a collection's record in metaBucket. Rows is absent in stores written
// before ReplaceCollection existed, and for collections never replaced.
type meta struct {
	vectordb.Collection
	Rows string `json:"rows,omitempty"`
}

func (m meta) bucket(name string) string {
	if m.Rows != "" {
		return m.Rows
	}
	return rowsPrefix + name
}

func (ix *index) put(r vectordb.Row) {
	unit := vectordb.Normalize(r.Embedding)
	r.Embedding = nil
	if i, ok := ix.pos[r.ID]; ok {
		ix.rows[i] = r
		copy(ix.vecs[i*ix.info.Dim:], unit)
		return
	}
	ix.pos[r.ID] = len(ix.rows)
	ix.rows = append(ix.rows, r)
	ix.vecs = append(ix.vecs, unit...)
}

func (ix *index) remove(id string) {
	i, ok := ix.pos[id]
	if !ok {
		return
	}
	last := len(ix.rows) - 1
	d := ix.info.Dim
	if i != last {
		ix.rows[i] = ix.rows[last]
		copy(ix.vecs[i*d:(i+1)*d], ix.vecs[last*d:])
		ix.pos[ix.rows[i].ID] = i
	}
	ix.rows = ix.rows[:last]
	ix.vecs = ix.vecs[:last*d]
	delete(ix.pos, id)
}

// EnsureCollection implements vectordb.Store.
func (s *Store) EnsureCollection(ctx context.Context, c vectordb.Collection) error {
	if err := vectordb.ValidName(c.Name); err != nil {
		return err
	}
	if c.Dim < 1 || c.Dim > 65536 {
		return fmt.Errorf("%w: dimension %d, want 1..65536", vectordb.ErrInvalid, c.Dim)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	ix, ok := s.colls[c.Name]
	s.mu.RUnlock()
	if ok {
		return checkSame(ix.info, c, "embedded:"+s.dir)
	}
	info := vectordb.Collection{Name: c.Name, Dim: c.Dim, EncoderID: c.EncoderID}
	m := meta{Collection: info}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		// rowsPrefix+name may hold another collection's rows (one that
		// ReplaceCollection renamed away from this name): take a free bucket then.
		m.Rows = rowsPrefix + c.Name
		for n := 1; tx.Bucket([]byte(m.Rows)) != nil; n++ {
			m.Rows = fmt.Sprintf("%s%s~%d", rowsPrefix, c.Name, n)
		}
		raw, _ := json.Marshal(m)
		if err := tx.Bucket([]byte(metaBucket)).Put([]byte(c.Name), raw); err != nil {
			return err
		}
		_, err := tx.CreateBucket([]byte(m.Rows))
		return err
	}); err != nil {
		return fmt.Errorf("create collection %s in embedded store %s: %w", c.Name, s.dir, err)
	}
	s.mu.Lock()
	s.colls[c.Name] = &index{info: info, bucket: m.Rows, pos: map[string]int{}}
	s.mu.Unlock()
	return nil
}

func checkSame(have, want vectordb.Collection, library string) error {
	if have.Dim != want.Dim {
		return fmt.Errorf("%w: collection %s holds %d-dimensional vectors (encoder %s), the loaded encoder %s makes %d: %s", vectordb.ErrDimensionMismatch, have.Name, have.Dim, orUnknown(have.EncoderID), orUnknown(want.EncoderID), want.Dim, vectordb.ReencodeHint(library))
	}
	if want.EncoderID != "" && !vectordb.SameEncoder(have.EncoderID, want.EncoderID) {
		return fmt.Errorf("%w: collection %s was encoded by %s, the loaded bundle's encoder is %s: %s", vectordb.ErrEncoderMismatch, have.Name, orUnknown(have.EncoderID), want.EncoderID, vectordb.ReencodeHint(library))
	}
	return nil
}

func orUnknown(id string) string {
	if id == "" {
		return "(not recorded)"
	}
	return id
}

// DropCollection implements vectordb.Store.
func (s *Store) DropCollection(ctx context.Context, name string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	ix, ok := s.colls[name]
	s.mu.RUnlock()
	if !ok {
		return nil
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte(metaBucket)).Delete([]byte(name)); err != nil {
			return err
		}
		if tx.Bucket([]byte(ix.bucket)) == nil {
			return nil
		}
		return tx.DeleteBucket([]byte(ix.bucket))
	}); err != nil {
		return fmt.Errorf("drop collection %s in embedded store %s: %w", name, s.dir, err)
	}
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	return nil
}

// ReplaceCollection implements vectordb.Store in one bbolt transaction: dst's record
// is pointed at src's rows bucket and src's record removed, so a crash leaves either
// the old state or the new one.
func (s *Store) ReplaceCollection(ctx context.Context, src, dst string) error {
	if err := vectordb.ValidName(dst); err != nil {
		return err
	}
	if src == dst {
		return fmt.Errorf("%w: replace collection %s by itself", vectordb.ErrInvalid, src)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	six, err := s.get(src)
	old := s.colls[dst]
	s.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("replace collection %s by %s: %w", dst, src, err)
	}
	info := six.info
	info.Name = dst
	raw, _ := json.Marshal(meta{Collection: info, Rows: six.bucket})
	if err := s.db.Update(func(tx *bolt.Tx) error {
		mb := tx.Bucket([]byte(metaBucket))
		if err := mb.Put([]byte(dst), raw); err != nil {
			return err
		}
		if err := mb.Delete([]byte(src)); err != nil {
			return err
		}
		if old != nil && old.bucket != six.bucket && tx.Bucket([]byte(old.bucket)) != nil {
			return tx.DeleteBucket([]byte(old.bucket))
		}
		return nil
	}); err != nil {
		return fmt.Errorf("replace collection %s by %s in embedded store %s: %w", dst, src, s.dir, err)
	}
	nix := &index{info: info, bucket: six.bucket, rows: six.rows, vecs: six.vecs, pos: six.pos}
	s.mu.Lock()
	s.colls[dst] = nix
	delete(s.colls, src)
	s.mu.Unlock()
	return nil
}

func (s *Store) get(name string) (*index, error) {
	ix, ok := s.colls[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (ingest loops into it first)", vectordb.ErrNoCollection, name)
	}
	return ix, nil
}

// Collections implements vectordb.Store.
func (s *Store) Collections(ctx context.Context) ([]vectordb.Collection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]vectordb.Collection, 0, len(s.colls))
	for _, ix := range s.colls {
		c := ix.info
		c.Count = len(ix.rows)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Upsert implements vectordb.Store: all rows in one transaction.
func (s *Store) Upsert(ctx context.Context, name string, rows []vectordb.Row) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	ix, err := s.get(name)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := vectordb.CheckRows(ix.info.Dim, rows); err != nil {
		return err
	}
	enc := make([][]byte, len(rows))
	for i, r := range rows {
		if enc[i], err = encodeRow(r); err != nil {
			return fmt.Errorf("upsert into %s: row %q: %w", name, r.ID, err)
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ix.bucket))
		for i, r := range rows {
			if err := b.Put([]byte(r.ID), enc[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("upsert %d rows into %s: %w", len(rows), name, err)
	}
	s.mu.Lock()
	for _, r := range rows {
		ix.put(r)
	}
	s.mu.Unlock()
	return nil
}

// Get implements vectordb.Store.
func (s *Store) Get(ctx context.Context, name string, ids []string) ([]vectordb.Row, error) {
	s.mu.RLock()
	ix, err := s.get(name)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	var out []vectordb.Row
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ix.bucket))
		for _, id := range ids {
			v := b.Get([]byte(id))
			if v == nil {
				continue
			}
			r, err := decodeRow(v, ix.info.Dim)
			if err != nil {
				return fmt.Errorf("row %q: %w", id, err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get from %s: %w", name, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return dedupe(out), nil
}

func dedupe(rows []vectordb.Row) []vectordb.Row {
	out := rows[:0]
	for i, r := range rows {
		if i > 0 && r.ID == rows[i-1].ID {
			continue
		}
		out = append(out, r)
	}
	return out
}

// Has implements vectordb.Store.
func (s *Store) Has(ctx context.Context, name string, ids []string) (map[string]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.get(name)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, id := range ids {
		if i, ok := ix.pos[id]; ok {
			out[id] = ix.rows[i].EncoderID
		}
	}
	return out, nil
}

// Delete implements vectordb.Store.
func (s *Store) Delete(ctx context.Context, name string, ids []string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	ix, err := s.get(name)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(ix.bucket))
		for _, id := range ids {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delete from %s: %w", name, err)
	}
	s.mu.Lock()
	for _, id := range ids {
		ix.remove(id)
	}
	s.mu.Unlock()
	return nil
}

// Count implements vectordb.Store.
func (s *Store) Count(ctx context.Context, name string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.get(name)
	if err != nil {
		return 0, err
	}
	return len(ix.rows), nil
}

// CountMatching implements vectordb.Store.
func (s *Store) CountMatching(ctx context.Context, name string, f vectordb.Filter) (int, error) {
	if err := f.Check(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.get(name)
	if err != nil {
		return 0, err
	}
	n := 0
	match := f.Matcher()
	for i := range ix.rows {
		if i&8191 == 8191 {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
		}
		r := &ix.rows[i]
		if match(r) {
			n++
		}
	}
	return n, nil
}

// List implements vectordb.Store.
func (s *Store) List(ctx context.Context, name, after string, limit int) ([]vectordb.Row, error) {
	if limit < 1 {
		return nil, fmt.Errorf("%w: limit %d", vectordb.ErrInvalid, limit)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ix, err := s.get(name)
	if err != nil {
		return nil, err
	}
	var out []vectordb.Row
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(ix.bucket)).Cursor()
		k, _ := c.Seek([]byte(after))
		if k != nil && after != "" && bytes.Equal(k, []byte(after)) {
			k, _ = c.Next()
		}
		for ; k != nil && len(out) < limit; k, _ = c.Next() {
			if i, ok := ix.pos[string(k)]; ok {
				out = append(out, ix.rows[i])
			}
		}
		return nil
	})
	return out, err
}

// Close implements vectordb.Store.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close embedded store %s: %w", s.dir, err)
	}
	return nil
}

var _ vectordb.Store = (*Store)(nil)

// Probe says whether Open would get the store in dir, without loading it: nil when
// the folder is writable and no other process holds the store's lock, an error
// wrapping vectordb.ErrLocked when one does, vectordb.ErrUnusable when the folder or
// file cannot serve. It never creates the store file (doctor uses it beside a server).
func Probe(dir string, lockTimeout time.Duration) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		parent := filepath.Dir(filepath.Clean(dir))
		if err := probeWritable(parent); err != nil {
			return fmt.Errorf("embedded store %s does not exist and cannot be created: %w", dir, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("embedded store %s: %w (%w): choose a writable folder with --store embedded:DIR", dir, vectordb.ErrUnusable, err)
	case !st.IsDir():
		return fmt.Errorf("embedded store %s is a file, not a folder: %w: choose a folder with --store embedded:DIR", dir, vectordb.ErrUnusable)
	}
	if err := probeWritable(dir); err != nil {
		return fmt.Errorf("embedded store %s: %w", dir, err)
	}
	path := filepath.Join(dir, fileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// A read-only open takes the shared lock, which a writer's exclusive lock refuses.
	db, err := bolt.Open(path, 0o644, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("embedded store %s: %w: another loopmatch (serve or ingest) holds it; stop it or use another --store folder", dir, vectordb.ErrLocked)
	}
	if err != nil {
		return fmt.Errorf("embedded store %s: %w (%w): the file is not a loopmatch store, or damaged", path, vectordb.ErrUnusable, err)
	}
	return db.Close()
}

func probeWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("%w: %s is not writable (%w): fix its permissions or choose another folder with --store embedded:DIR", vectordb.ErrUnusable, dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
