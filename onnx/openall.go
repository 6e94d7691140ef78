package onnx

import (
	"runtime"
	"sync"
)

// Concurrently runs fns (openers of models) side by side, as many at a time as there are
// cores, waits for all of them and returns the first error in the order of fns. ONNX
// Runtime builds a session on one thread, and a large graph takes a second or more, so a
// command that opens several starts sooner this way.
func Concurrently(fns ...func() error) error {
	errs := make([]error, len(fns))
	sem := make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// OpenAll opens the models of specs concurrently (Concurrently) and returns them in the
// order of specs. On an error it closes those it opened and returns the first error.
func (r *Runtime) OpenAll(b *Bundle, specs []ModelSpec) ([]*Model, error) {
	out := make([]*Model, len(specs))
	fns := make([]func() error, len(specs))
	for i, s := range specs {
		fns[i] = func() (err error) {
			out[i], err = r.Open(b, s)
			return err
		}
	}
	if err := Concurrently(fns...); err != nil {
		for _, m := range out {
			if m != nil {
				m.Close()
			}
		}
		return nil, err
	}
	return out, nil
}
