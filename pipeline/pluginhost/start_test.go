package pluginhost

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/install/lockfile"
)

// A worker has no lock file of its own: it checks each plugin against the
// entry of the client's lock file that the run's plan carries, before the
// plugin runs.
func TestLockedToChecksBeforeStart(t *testing.T) {
	dir := t.TempDir()
	exe, marker := markedPlugin(t, dir, "remote")
	sum, err := lockfile.HashFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	const clientLock = "/client/project/.sweetspot.lock.hcl"
	h, _ := newHost(t, WithSearchPaths(dir))

	c, err := h.Start(context.Background(), "remote", LockedTo(clientLock, map[string]string{lockfile.Platform(): lockfile.FormatHash(sum)}))
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.SecureConfig == nil {
		t.Error("go-plugin's SecureConfig is not set to the locked checksum")
	}
	c.Kill()
	ran := runs(marker)

	other := sha256.Sum256([]byte("another build"))
	for name, hashes := range map[string]map[string]string{
		"another sum":              {lockfile.Platform(): lockfile.FormatHash(other[:])},
		"no sum for this platform": {"plan9_arm": lockfile.FormatHash(sum)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.Start(context.Background(), "remote", LockedTo(clientLock, hashes))
			var ce *ChecksumError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), clientLock) {
				t.Fatalf("Start = %v, want a *ChecksumError naming %s", err, clientLock)
			}
			if n := runs(marker); n != ran {
				t.Errorf("the refused plugin ran (%d runs, %d before)", n, ran)
			}
		})
	}
}
