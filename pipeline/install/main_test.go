package install

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
)

// TestMain gives the tests a cache of checked plugin copies of their own
// (the installer describes each plugin from its checked copy).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "install-test-cache")
	if err != nil {
		panic(err)
	}
	os.Setenv(pluginhost.EnvExecCache, filepath.Join(dir, "plugins"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestInitLocksTheBytesThatDescribed: init describes a plugin from the
// checked copy of what it read (pluginhost.DescribeChecked), locks that
// copy's sum, and leaves the copy where the first run finds it.
func TestInitLocksTheBytesThatDescribed(t *testing.T) {
	p := newProject(t)
	mirror(t, filepath.Join(p.dir, "mirror"), "fake", "1.0.0")
	res, err := Init(context.Background(), p.options(required("fake", "./mirror", "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plugins) != 1 || res.Plugins[0].Action != ActionInstalled {
		t.Fatalf("Init = %+v", res)
	}
	sum, err := lockfile.HashFile(res.Plugins[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if got := readLock(t, p.lock).Plugins["fake"].Hashes[lockfile.Platform()]; got != lockfile.FormatHash(sum) {
		t.Errorf("locked %s, the installed file has %s", got, lockfile.FormatHash(sum))
	}
	copied := filepath.Join(os.Getenv(pluginhost.EnvExecCache), hex.EncodeToString(sum), filepath.Base(res.Plugins[0].Path))
	if got, err := lockfile.HashFile(copied); err != nil || !bytes.Equal(got, sum) {
		t.Errorf("no checked copy of the locked bytes at %s: %x, %v", copied, got, err)
	}
}
