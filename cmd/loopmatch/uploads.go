package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/loopmatch/loopmatch/ingest"
	"github.com/loopmatch/loopmatch/query"
)

// uploadIngester puts the write side (ingest.Uploads) behind the HTTP server's
// Ingester: the server never imports ingest, the command wires the two together.
type uploadIngester struct{ u *ingest.Uploads }

func (a uploadIngester) Ingest(ctx context.Context, meta query.UploadMeta, files []query.Upload) ([]query.UploadResult, error) {
	in := make([]ingest.Upload, len(files))
	for i, f := range files {
		in[i] = ingest.Upload(f)
	}
	res, err := a.u.Ingest(ctx, ingest.UploadMeta(meta), in)
	if errors.Is(err, ingest.ErrUploadsFull) {
		err = fmt.Errorf("%w: %w", query.ErrUploadsFull, err)
	}
	out := make([]query.UploadResult, len(res))
	for i, r := range res {
		out[i] = query.UploadResult{Filename: r.Filename, ID: r.ID, Status: "stored"}
		if !r.Stored {
			out[i].Status, out[i].Code, out[i].Reason = "failed", string(r.Code), r.Reason
		}
	}
	return out, err
}
