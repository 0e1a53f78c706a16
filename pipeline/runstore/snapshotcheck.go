package runstore

// A manifest snapshot carries the CRC-32C of its own bytes, as each line
// of the change log carries its own, so that damage to the snapshot (a
// flipped byte, an edit, a tear the rename did not prevent on a disk that
// lies about fsync) is an error naming the file rather than a decision or
// a digest silently read wrong. The sum is over the file as written, with
// the sum's eight hex digits replaced by zeros: no re-encoding is needed
// to check it, so the check cannot disagree with the writer over how JSON
// is spelled.
//
// The sum is the first field of the snapshot, written as
//
//	{
//	  "check": "crc32c:1a2b3c4d",
//
// A snapshot without it (written before it existed) is read unchecked;
// its output files are still checked against their digests. A snapshot
// that holds a sum anywhere but there is damaged: a byte changed in the
// field's name or in the layout before it must not turn a checked
// snapshot into an unchecked one.

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"hash/crc32"
)

// snapshotCheckPrefix is what a checked snapshot begins with, up to the
// sum's hex digits.
var snapshotCheckPrefix = []byte("{\n  \"check\": \"crc32c:")

const snapshotCheckPlaceholder = "00000000"

// sealSnapshot fills in the sum of a snapshot encoded with its check
// field set to snapshotCheckPlaceholder, in place.
func sealSnapshot(data []byte) error {
	if !bytes.HasPrefix(data, snapshotCheckPrefix) {
		return fmt.Errorf("encode run manifest: the check field is not first")
	}
	digits := data[len(snapshotCheckPrefix) : len(snapshotCheckPrefix)+8]
	if string(digits) != snapshotCheckPlaceholder {
		return fmt.Errorf("encode run manifest: the check field is not the placeholder")
	}
	sum := crc32.Checksum(data, castagnoli)
	hex.Encode(digits, []byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	return nil
}

// sealed reports whether a snapshot begins with its sum's field.
func sealed(data []byte) bool { return bytes.HasPrefix(data, snapshotCheckPrefix) }

// checkSnapshot verifies the sum of a snapshot read from path. A snapshot
// that does not begin with a check field is accepted as one written
// before snapshots carried it.
func checkSnapshot(path string, data []byte) error {
	if !sealed(data) {
		if bytes.Contains(data, []byte(`"crc32c:`)) {
			return fmt.Errorf("run manifest %s is damaged: it holds a check sum, but not as its first field", path)
		}
		return nil
	}
	end := len(snapshotCheckPrefix) + 8
	if len(data) < end+1 || data[end] != '"' {
		return fmt.Errorf("run manifest %s is damaged: its check field is not crc32c: and 8 lower-case hex digits", path)
	}
	var want [4]byte
	digits := data[len(snapshotCheckPrefix):end]
	if _, err := hex.Decode(want[:], digits); err != nil || hex.EncodeToString(want[:]) != string(digits) {
		return fmt.Errorf("run manifest %s is damaged: its check field is not crc32c: and 8 lower-case hex digits", path)
	}
	zeroed := bytes.Clone(data)
	copy(zeroed[len(snapshotCheckPrefix):end], snapshotCheckPlaceholder)
	got := crc32.Checksum(zeroed, castagnoli)
	if got != uint32(want[0])<<24|uint32(want[1])<<16|uint32(want[2])<<8|uint32(want[3]) {
		return fmt.Errorf("run manifest %s is damaged: its CRC-32C is %08x, its check field says %x; the run cannot be trusted as recorded (restore the file, or start the run again)", path, got, want)
	}
	return nil
}
