package vectordb

import "context"

// ListPage is how many rows ListAll asks a store for at a time.
const ListPage = 1000

// ListAll pages through a whole collection with s.List: every row, in id order, without
// embeddings. Errors are the store's, unwrapped (ErrNoCollection for a missing one).
func ListAll(ctx context.Context, s Store, collection string) ([]Row, error) {
	var out []Row
	for after := ""; ; {
		page, err := s.List(ctx, collection, after, ListPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < ListPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
