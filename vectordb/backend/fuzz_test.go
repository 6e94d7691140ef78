package backend

import (
	"net"
	"strings"
	"testing"
)

// FuzzParse: every --store value either parses into a kind with an address (a folder,
// or host:port for Milvus) or is refused with a message
// saying how to write one; nothing panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "embedded:data/store", "data/store", "milvus://h", "milvus://h:1?consistency=strong",
		"milvus://[::1]:19530/", "milvus://", "redis://x", "embedded:", "milvus://h?ef=1", "milvus://u@h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			if !strings.Contains(err.Error(), "store") {
				t.Fatalf("error does not say it is about the store: %v", err)
			}
			return
		}
		switch s.Kind {
		case "embedded":
			if s.Addr == "" || s.Consistency != "" {
				t.Fatalf("%q parsed to %+v", spec, s)
			}
		case "milvus":
			if host, port, err := net.SplitHostPort(s.Addr); err != nil || host == "" || port == "" {
				t.Fatalf("%q parsed to Milvus address %q: %v", spec, s.Addr, err)
			}
		default:
			t.Fatalf("%q parsed to kind %q", spec, s.Kind)
		}
	})
}
