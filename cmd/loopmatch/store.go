package main

import (
	"context"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/backend"
)

// openStore opens the backend a --store value names: embedded:DIR (or a bare folder) or
// milvus://host[:port][?consistency=strong|bounded|session|eventually].
func openStore(ctx context.Context, spec string) (vectordb.Store, error) {
	return backend.Open(ctx, spec, backend.Options{})
}
