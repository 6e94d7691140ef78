// Package loopid is a loop's identity, shared by the write side (ingest), the read side
// (recommend, query) and eval: the content id of a file, the collection an instrument's
// loops live in, what ids and instrument names look like, and musical keys in their one
// canonical spelling. It imports nothing of the project, so every package may use it.
package loopid
