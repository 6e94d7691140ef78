// Package analysis estimates what a loop's audio says about itself, without models:
// its tempo (from the loop's length in whole bars and the periodicity of its onsets)
// and, for tonal loops, its key (from a chroma profile). Everything is deterministic
// pure Go and costs a few milliseconds per loop, so ingest runs it in its decode
// workers on the window it has already decoded.
//
// Estimates carry a confidence in 0..1. Names and manifests stay the better source:
// callers use these only where neither says.
package analysis
