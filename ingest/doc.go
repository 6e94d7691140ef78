// Package ingest walks loop libraries and stores every loop's embedding in the vector
// collection of its instrument: recognise audio by content, infer instrument, pack, BPM
// and key (a manifest wins), skip what is already stored, decode and resample in
// parallel, encode in batches, upsert in batches. One bad file never stops a run; a
// re-run after a crash or Ctrl-C ends with exactly the rows of a clean run, because ids
// are content hashes and upserts are idempotent.
package ingest
