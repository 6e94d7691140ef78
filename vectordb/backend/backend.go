package backend

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/loopmatch/loopmatch/vectordb"
	"github.com/loopmatch/loopmatch/vectordb/embedded"
	"github.com/loopmatch/loopmatch/vectordb/milvus"
)

// DefaultSpec is the store used when none is given: the embedded backend, which needs
// no server.
const DefaultSpec = "embedded:data/store"

// DefaultMilvusPort is Milvus's gRPC port, used when a milvus:// address names none.
const DefaultMilvusPort = "19530"

// Options tune each backend; the spec picks which one is used. Settings written in the
// spec (milvus://...?consistency=strong) override these.
type Options struct {
	Embedded embedded.Options
	Milvus   milvus.Options
}

// Spec is a parsed --store value.
type Spec struct {
	Kind string // "embedded" or "milvus"
	// Addr is the folder (embedded) or host:port (milvus).
	Addr string
	// Consistency from ?consistency= (milvus only); "" means the backend's default.
	Consistency string
}

// Parse is the one parser of a --store value, for every command and doctor. It reads
// "embedded:DIR" (or a bare folder), and
// "milvus://host[:port][?consistency=strong|bounded|session|eventually]".
// "" is DefaultSpec.
func Parse(spec string) (Spec, error) {
	if spec == "" {
		spec = DefaultSpec
	}
	if !strings.HasPrefix(spec, "milvus://") {
		dir, ok := strings.CutPrefix(spec, "embedded:")
		if !ok && strings.Contains(spec, "://") {
			return Spec{}, fmt.Errorf("store %q: use embedded:DIR or milvus://host:19530", spec)
		}
		if dir == "" {
			return Spec{}, fmt.Errorf("store %q: name a folder, as in embedded:data/store", spec)
		}
		return Spec{Kind: "embedded", Addr: dir}, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return Spec{}, fmt.Errorf("store %q: %w: write milvus://host:19530", spec, err)
	}
	if u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.Fragment != "" {
		return Spec{}, fmt.Errorf("store %q: write milvus://host:19530[?consistency=strong]", spec)
	}
	s := Spec{Kind: "milvus", Addr: u.Host}
	if u.Port() == "" {
		s.Addr = net.JoinHostPort(u.Hostname(), DefaultMilvusPort)
	}
	// url.Parse lets some malformed hosts through ("milvus://]0"): the address must
	// split into a host and a port, as dialing will.
	if host, port, err := net.SplitHostPort(s.Addr); err != nil || host == "" || port == "" {
		return Spec{}, fmt.Errorf("store %q: %q is not host:port: write milvus://host:19530", spec, s.Addr)
	}
	for k, v := range u.Query() {
		switch k {
		case "consistency":
			s.Consistency = v[len(v)-1]
		default:
			return Spec{}, fmt.Errorf("store %q: unknown setting %q: the only one is consistency=strong|bounded|session|eventually", spec, k)
		}
	}
	return s, nil
}

// Open opens the store a spec names. The caller closes it.
func Open(ctx context.Context, spec string, o Options) (vectordb.Store, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	// Each backend returns a typed nil pointer with its error; the interface must be a
	// true nil then, or a caller's "if store != nil { store.Close() }" would panic.
	switch s.Kind {
	case "embedded":
		st, err := embedded.Open(ctx, s.Addr, o.Embedded)
		if err != nil {
			return nil, err
		}
		return st, nil
	case "milvus":
		mo := o.Milvus
		if s.Consistency != "" {
			mo.Consistency = s.Consistency
		}
		st, err := milvus.Open(ctx, s.Addr, mo)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	return nil, fmt.Errorf("store %q: unknown kind %q: use embedded:DIR or milvus://host:19530", spec, s.Kind)
}
