package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// openStore opens the backend a --store value names: embedded:DIR (or a bare folder) or
// milvus://host:port[?consistency=strong|bounded|session|eventually].
func openStore(ctx context.Context, spec string) (vectordb.Store, error) {
	kind, addr, err := vectordb.ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	switch kind {
	case "embedded":
		return embedded.Open(ctx, addr, embedded.Options{})
	case "milvus":
		host, query, _ := strings.Cut(addr, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return nil, fmt.Errorf("store %q: %w", spec, err)
		}
		return milvus.Open(ctx, host, milvus.Options{Consistency: q.Get("consistency")})
	}
	return nil, fmt.Errorf("store %q: unknown kind %q", spec, kind)
}
