package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loopmatch/loopmatch/vectordb/embedded"
)

// TestStoreUnusable: every command that opens the store, given a store another process
// holds, a --store that is a file, or one it cannot write, exits non-zero with a message
// that says what is wrong, and never panics (runCLI would not return).
func TestStoreUnusable(t *testing.T) {
	held := t.TempDir()
	s, err := embedded.Open(t.Context(), held, embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	lib := t.TempDir()
	seed := strings.Repeat("ab", 16)
	stores := []struct {
		name, store, want string
		rootOnly          bool // permissions do not stop root
	}{
		{"held", "embedded:" + held, "in use by another process", false},
		{"a file", "embedded:" + file, "--store embedded:DIR", false},
		{"not writable", "embedded:" + filepath.Join(readOnly, "store"), "--store embedded:DIR", true},
	}
	commands := []struct {
		name string
		args []string
	}{
		{"serve", []string{"serve", "--addr", "127.0.0.1:0"}},
		{"demo", []string{"demo", "--addr", "127.0.0.1:0", "--library", "../../demo"}},
		{"recommend", []string{"recommend", "--seed-id", seed}},
		{"eval", []string{"eval", "--split", "all"}},
		{"ingest", []string{"ingest", lib}},
		{"doctor", []string{"doctor"}},
	}
	for _, st := range stores {
		for _, c := range commands {
			t.Run(st.name+"/"+c.name, func(t *testing.T) {
				if st.rootOnly && os.Geteuid() == 0 {
					t.Skip("root writes into a read-only folder")
				}
				args := append(append([]string{}, c.args...), "--bundle", testBundle, "--store", st.store)
				out, err := runCLI(t, args...)
				if err == nil {
					t.Fatalf("%v: exit status 0 on a %s store:\n%s", c.args, st.name, out)
				}
				msg := err.Error() + "\n" + out
				if !strings.Contains(msg, st.want) {
					t.Errorf("%v: the message does not say %q:\n%s", c.args, st.want, msg)
				}
			})
		}
	}
}
