package embedded

import (
	"container/heap"
	"context"
	"runtime"
	"sync"

	"github.com/viterin/vek/vek32"

	"github.com/loopmatch/loopmatch/vectordb"
)

// The search path: exact cosine scans, shared between concurrent searches of one
// collection.

// Search implements vectordb.Store: exact cosine over every row that passes the filter,
// split across cores.
//
// A scan of a large collection is bound by memory bandwidth (100k rows of 1024 dims are
// 400 MB read per query), so concurrent searches of one collection share their scans:
// the first starts one, the others queue, and each scan serves everything queued when
// it began (up to maxScanBatch queries), dotting every row with all of them while the
// row is in cache. Each query's answer is the one it would get alone: the same rows,
// the same dot products, the same top-k.
func (s *Store) Search(ctx context.Context, name string, vec []float32, k int, f vectordb.Filter) ([]vectordb.Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.Check(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	ix, err := s.get(name)
	if err == nil {
		err = vectordb.CheckQuery(ix.info.Dim, vec, k)
	}
	small := err == nil && len(ix.rows) < shareScanRows
	if err != nil || small {
		defer s.mu.RUnlock()
	} else {
		s.mu.RUnlock()
	}
	if err != nil {
		return nil, err
	}
	req := &searchReq{ctx: ctx, q: vectordb.Normalize(vec), k: k, match: f.Matcher(), done: make(chan searchResult, 1)}
	if small {
		ix.scan([]*searchReq{req})
		r := <-req.done
		return r.hits, r.err
	}
	ix.queue.mu.Lock()
	ix.queue.pending = append(ix.queue.pending, req)
	lead := !ix.queue.running
	ix.queue.running = true
	ix.queue.mu.Unlock()
	if lead {
		go s.drain(ix)
	}
	select {
	case r := <-req.done:
		return r.hits, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

const (
	// shareScanRows: below this many rows a scan is cheap and runs on the caller's
	// goroutine, alone.
	shareScanRows = 2048
	// maxScanBatch bounds the queries one scan serves (their vectors stay in L2).
	maxScanBatch = 64
)

// scanQueue holds the searches waiting for the next shared scan of one collection.
type scanQueue struct {
	mu      sync.Mutex
	pending []*searchReq
	running bool // a drain goroutine is serving the queue
}

type searchReq struct {
	ctx context.Context
	q   []float32 // unit query
	k   int
	// match is the filter's Matcher, built once per request
	match func(*vectordb.Row) bool
	done  chan searchResult // buffered: a caller that gave up never blocks the scan
}

type searchResult struct {
	hits []vectordb.Hit
	err  error
}

// drain runs shared scans until the queue is empty. Each scan holds the read lock, so
// writers wait only for the scan in progress, as they would for a single search.
func (s *Store) drain(ix *index) {
	for {
		ix.queue.mu.Lock()
		n := min(len(ix.queue.pending), maxScanBatch)
		if n == 0 {
			ix.queue.running = false
			ix.queue.pending = nil
			ix.queue.mu.Unlock()
			return
		}
		batch := make([]*searchReq, 0, n)
		for _, r := range ix.queue.pending[:n] {
			if err := r.ctx.Err(); err != nil {
				r.done <- searchResult{err: err}
				continue
			}
			batch = append(batch, r)
		}
		ix.queue.pending = append(ix.queue.pending[:0], ix.queue.pending[n:]...)
		ix.queue.mu.Unlock()
		s.mu.RLock()
		ix.scan(batch)
		s.mu.RUnlock()
	}
}

// scan answers every request in reqs with one pass over the rows, split across cores.
// The caller holds the store's read lock.
func (ix *index) scan(reqs []*searchReq) {
	if len(reqs) == 0 {
		return
	}
	n := len(ix.rows)
	workers := runtime.GOMAXPROCS(0)
	if n < 2048 {
		workers = 1
	}
	parts := make([][]topK, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			ts := make([]topK, len(reqs))
			live := make([]bool, len(reqs))
			for j, r := range reqs {
				ts[j].k = r.k
				live[j] = true
			}
			nlive := len(reqs)
			d := ix.info.Dim
			for i := lo; i < hi; i++ {
				// A cancelled request stops being scanned for; when none is left, stop.
				if (i-lo)&8191 == 8191 {
					for j, r := range reqs {
						if live[j] && r.ctx.Err() != nil {
							live[j] = false
							nlive--
						}
					}
					if nlive == 0 {
						break
					}
				}
				row := &ix.rows[i]
				v := ix.vecs[i*d : (i+1)*d]
				for j, r := range reqs {
					if !live[j] || !r.match(row) {
						continue
					}
					ts[j].offer(vek32.Dot(r.q, v), i, row.ID)
				}
			}
			parts[w] = ts
		}(w, lo, hi)
	}
	wg.Wait()
	for j, r := range reqs {
		if err := r.ctx.Err(); err != nil {
			r.done <- searchResult{err: err}
			continue
		}
		var hits []vectordb.Hit
		for _, p := range parts {
			for _, c := range p[j].items {
				hits = append(hits, vectordb.Hit{Row: ix.rows[c.i], Score: c.score})
			}
		}
		vectordb.SortHits(hits)
		if len(hits) > r.k {
			hits = hits[:r.k]
		}
		r.done <- searchResult{hits: hits}
	}
}

// topK keeps the k best candidates in a min-heap (worst on top), ties by id.
type topK struct {
	k     int
	items []cand
}

type cand struct {
	score float32
	i     int
	id    string
}

func worse(a, b cand) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.id > b.id
}

func (t *topK) Len() int           { return len(t.items) }
func (t *topK) Less(i, j int) bool { return worse(t.items[i], t.items[j]) }
func (t *topK) Swap(i, j int)      { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *topK) Push(x any)         { t.items = append(t.items, x.(cand)) }
func (t *topK) Pop() any {
	x := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return x
}

func (t *topK) offer(score float32, i int, id string) {
	c := cand{score, i, id}
	if len(t.items) < t.k {
		heap.Push(t, c)
		return
	}
	if worse(t.items[0], c) {
		t.items[0] = c
		heap.Fix(t, 0)
	}
}
