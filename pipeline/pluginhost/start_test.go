package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
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
	checkCopy(t, c, exe, sum)
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

// Only SWEETSPOT_REATTACH connects the host to a plugin it did not start,
// and it says so: that connection has neither a checksum check nor mutual
// TLS. Every plugin the host starts itself has both handshake and an
// authenticated connection (peer credentials, or mutual TLS).
func TestReattachIsExplicit(t *testing.T) {
	rc := sdktest.Serve(t, stages.NewSet("dbg"))
	js, err := json.Marshal(map[string]stagerpc.Reattach{"dbg": stagerpc.ReattachOf(rc)})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(stagerpc.EnvReattach, string(js))
	var log syncBuffer
	h, _ := newHost(t, WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: &log})))
	dbg := start(t, h, "dbg")
	if dbg.cfg.Reattach == nil || dbg.cmd != nil {
		t.Fatal("the debug plugin was not reattached")
	}
	if !strings.Contains(log.String(), "no checksum check, no mutual TLS") {
		t.Errorf("reattaching logged no warning:\n%s", log.String())
	}
	if dbg.Transport() != TransportNone {
		t.Errorf("the debug plugin's transport is %q, want %q", dbg.Transport(), TransportNone)
	}
	started := start(t, h, "test")
	want := TransportTLS
	if stagerpc.PeerAuthSupported {
		want = TransportPeer
	}
	if started.cfg.Reattach != nil || started.Transport() != want {
		t.Errorf("a plugin the host starts: Reattach=%v transport %q, want %q", started.cfg.Reattach, started.Transport(), want)
	}
}
