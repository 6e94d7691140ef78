// Package vectordbtest is the conformance suite every vectordb.Store backend runs: the
// same test functions, the same data, the same expected answers (computed by brute
// force here), so the backends agree with each other by agreeing with it.
package vectordbtest
