package runstore

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// BenchmarkOutputHash measures what the run store pays per byte to record
// an output (its sha256) against an in-process copy of the same bytes. Any
// way for outputs to leave a plugin, streamed or as a file, ends in this
// hash before the host commits the file, so its ratio to the copy caps the
// from-plugin boundary throughput of a real run.
func BenchmarkOutputHash(b *testing.B) {
	const size = 64 << 20
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	var hashTime, copyTime time.Duration
	b.SetBytes(size)
	for b.Loop() {
		t0 := time.Now()
		sha256.Sum256(src)
		hashTime += time.Since(t0)
		t0 = time.Now()
		copy(dst, src)
		copyTime += time.Since(t0)
	}
	gbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e9 }
	b.ReportMetric(gbps(hashTime), "sha256-GB/s")
	b.ReportMetric(gbps(copyTime), "copy-GB/s")
	b.ReportMetric(hashTime.Seconds()/copyTime.Seconds(), "hash/copy-time")
}

// BenchmarkReadPortFile reads a committed port file of many small batches
// as a stage's input is read: opening it (which verifies its metadata) and
// every batch.
func BenchmarkReadPortFile(b *testing.B) {
	mem := memory.NewGoAllocator()
	path := filepath.Join(b.TempDir(), OutputRel("emit.a", 0, "table"))
	pw := NewPortWriter(path, nil, mem)
	for i := int64(0); i < 2000; i++ {
		rec := batch(b, mem, i*100, 100)
		if err := pw.Write(rec); err != nil {
			b.Fatal(err)
		}
		rec.Release()
	}
	if _, _, _, err := pw.Commit(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := OpenFiles([]string{path}, mem)
		if err != nil {
			b.Fatal(err)
		}
		for r.Next() {
		}
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
		r.Release()
	}
}
