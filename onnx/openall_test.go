package onnx

import (
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentlyBoundsAndOrdersErrors: at most GOMAXPROCS openers at once, every one
// runs, and the error returned is the first in the openers' order, not in time.
func TestConcurrentlyBoundsAndOrdersErrors(t *testing.T) {
	var running, peak, ran atomic.Int32
	first, second := errors.New("first"), errors.New("second")
	fns := make([]func() error, 12)
	for i := range fns {
		fns[i] = func() error {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(time.Duration(12-i) * time.Millisecond) // later openers finish sooner
			running.Add(-1)
			ran.Add(1)
			switch i {
			case 3:
				return first
			case 9:
				return second
			}
			return nil
		}
	}
	if err := Concurrently(fns...); err != first {
		t.Errorf("Concurrently = %v, want the 4th opener's error", err)
	}
	if ran.Load() != 12 || int(peak.Load()) > runtime.GOMAXPROCS(0) {
		t.Errorf("%d of 12 openers ran, at most %d at once (GOMAXPROCS %d)", ran.Load(), peak.Load(), runtime.GOMAXPROCS(0))
	}
}

// TestOpenAllKeepsOrderAndClosesOnError: the models come back in the specs' order; one
// spec that cannot open fails the call and closes the others.
func TestOpenAllKeepsOrderAndClosesOnError(t *testing.T) {
	b, err := LoadBundle(testBundle)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := rt.OpenAll(b, b.Models)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Spec.Name != b.Models[i].Name {
			t.Errorf("model %d is %s, want %s", i, m.Spec.Name, b.Models[i].Name)
		}
		m.Close()
	}
	before := len(rt.OpenModels())
	bad := append([]ModelSpec{}, b.Models...)
	bad[1].SHA256 = strings.Repeat("0", 64)
	if _, err := rt.OpenAll(b, bad); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("OpenAll with a wrong sha256: %v", err)
	}
	if n := len(rt.OpenModels()); n != before {
		t.Errorf("%d models open after a failed OpenAll, %d before: it must close what it opened", n, before)
	}
}

// TestOpenAnomaliesLeavesOutInstrumentsWithout: every instrument's model from a bundle with
// them, none (and no error) from one without.
func TestOpenAnomaliesLeavesOutInstrumentsWithout(t *testing.T) {
	for dir, want := range map[string]int{anomalyBundle: 2, testBundle: 0} {
		b, err := LoadBundle(dir)
		if err != nil {
			t.Fatal(err)
		}
		as, err := rt.OpenAnomalies(b)
		if err != nil || len(as) != want {
			t.Errorf("%s: %d anomaly models, %v; want %d", dir, len(as), err, want)
		}
		for inst, a := range as {
			if id, _ := b.AnomalyID(inst); a.ID != id {
				t.Errorf("%s: %s model %s, want %s", dir, inst, a.ID, id)
			}
			a.Close()
		}
	}
}
