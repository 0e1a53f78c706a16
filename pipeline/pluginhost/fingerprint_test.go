package pluginhost

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

func TestFingerprint(t *testing.T) {
	h, _ := newHost(t)
	raw, err := lockfile.HashFile(filepath.Join(pluginDir, sdk.PluginPrefix+"test"))
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(raw)
	// Callers that arrive while the executable is being hashed get the
	// same answer.
	var wg sync.WaitGroup
	got := make([]string, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = h.Fingerprint("test")
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != want {
			t.Errorf("caller %d: %q, %v; want %q", i, got[i], errs[i], want)
		}
	}

	// A failure is not remembered: the plugin installed afterwards is
	// found.
	dir := t.TempDir()
	h2, _ := newHost(t, WithSearchPaths(dir))
	var nf *NotFoundError
	if _, err := h2.Fingerprint("late"); !errors.As(err, &nf) {
		t.Fatalf("fingerprint of a missing plugin: %v, want a *NotFoundError", err)
	}
	if err := os.WriteFile(filepath.Join(dir, sdk.PluginPrefix+"late"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h2.mu.Lock()
	h2.discover = nil // the listing is taken once per Host
	h2.mu.Unlock()
	if _, err := h2.Fingerprint("late"); err != nil {
		t.Errorf("fingerprint once the plugin exists: %v", err)
	}
}
