package runstore

import (
	"bytes"
	"encoding/hex"
	"hash/crc32"
	"os"
	"strings"
	"testing"
)

// sealedRun is a finished run whose snapshot holds a decision, and the
// path and bytes of that snapshot.
func sealedRun(t *testing.T) (*Store, string, []byte) {
	t.Helper()
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261206-050000-a1b2c3"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Update(func(m *Manifest) {
		m.Decision = &Decision{Stage: "resize.fit", Rounds: 9, Status: "converged", Chosen: "mlp-d1-w17"}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := run.End(nil); err != nil {
		t.Fatal(err)
	}
	run.Unlock()
	path := run.Path(ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s, path, data
}

// The sum in a snapshot is the CRC-32C (Castagnoli, as the standard
// library computes it) of the file with the sum's digits zeroed, and an
// intact snapshot reads back as written.
func TestSnapshotCarriesItsOwnCRC(t *testing.T) {
	s, _, data := sealedRun(t)
	prefix := "{\n  \"check\": \"crc32c:"
	if !strings.HasPrefix(string(data), prefix) {
		t.Fatalf("the snapshot does not begin with its sum:\n%.80s", data)
	}
	digits := string(data[len(prefix) : len(prefix)+8])
	zeroed := []byte(strings.Replace(string(data), digits, "00000000", 1))
	sum := crc32.Checksum(zeroed, crc32.MakeTable(crc32.Castagnoli))
	want := hex.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	if digits != want {
		t.Errorf("the snapshot's sum is %s, the CRC-32C of its bytes is %s", digits, want)
	}
	run, err := s.Load("20261206-050000-a1b2c3")
	if err != nil {
		t.Fatal(err)
	}
	if m := run.Manifest(); m.Decision == nil || m.Decision.Chosen != "mlp-d1-w17" || m.Status != "succeeded" {
		t.Errorf("read back %+v", m)
	}
}

// Every single-bit change anywhere in a snapshot, the sum's own field
// included, is refused: no changed snapshot is ever handed out.
func TestSnapshotWithAnyBitFlippedIsRefused(t *testing.T) {
	_, path, data := sealedRun(t)
	dir := path[:len(path)-len(ManifestFile)]
	for at := range data {
		for bit := range 8 {
			changed := bytes.Clone(data)
			changed[at] ^= 1 << bit
			if err := os.WriteFile(path, changed, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := ReadManifest(dir)
			if err == nil {
				t.Fatalf("byte %d bit %d changed (%q): read as %+v", at, bit, data[max(0, at-10):min(len(data), at+10)], m)
			}
		}
	}
}

// A decision edited in the file is refused with a message naming the
// file; a snapshot written before snapshots carried a sum is read.
func TestEditedSnapshotIsRefusedAndAnUnsealedOneIsRead(t *testing.T) {
	s, path, data := sealedRun(t)
	edited := bytes.Replace(data, []byte("mlp-d1-w17"), []byte("mlp-d1-w99"), 1)
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.Load("20261206-050000-a1b2c3")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("an edited snapshot: %v, want an error naming %s as damaged", err, path)
	}
	// The same manifest as an older version wrote it: no check field.
	end := bytes.IndexByte(data, '\n')
	line := bytes.IndexByte(data[end+1:], '\n')
	older := append([]byte("{"), data[end+1+line:]...)
	if err := os.WriteFile(path, older, 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := s.Load("20261206-050000-a1b2c3")
	if err != nil {
		t.Fatalf("a snapshot without a sum: %v\n%s", err, older)
	}
	if m := run.Manifest(); m.Decision == nil || m.Decision.Chosen != "mlp-d1-w17" {
		t.Errorf("read back %+v", m)
	}
}
