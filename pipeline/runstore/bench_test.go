package runstore

import (
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zeebo/blake3"
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

// BenchmarkVerifyHash weighs what verifying a committed file costs
// against reading it, for the two hashes the run store could record:
// sha256 (what the manifest records) and BLAKE3 (github.com/zeebo/blake3).
// Each iteration reads the file as a stage's input is read (OpenFiles and
// every batch, without the digest check) and hashes it from disk with
// each hash, as verifyFile does (1 MiB reads). Two shapes: many small
// batches (BenchmarkReadPortFile's, a results table's), where decoding
// dominates reading, and a few 1 MiB batches, where reading is little
// more than a copy.
func BenchmarkVerifyHash(b *testing.B) {
	for _, shape := range []struct {
		name          string
		batches, rows int64
	}{{"small-batches", 2000, 100}, {"large-batches", 64, 128 << 10}} {
		b.Run(shape.name, func(b *testing.B) {
			mem := memory.NewGoAllocator()
			path := filepath.Join(b.TempDir(), OutputRel("emit.a", 0, "table"))
			pw := NewPortWriter(path, nil, mem)
			for i := int64(0); i < shape.batches; i++ {
				rec := batch(b, mem, i*shape.rows, shape.rows)
				if err := pw.Write(rec); err != nil {
					b.Fatal(err)
				}
				rec.Release()
			}
			_, size, _, err := pw.Commit()
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 1<<20)
			hashFile := func(h hash.Hash) {
				f, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				if _, err := io.CopyBuffer(h, f, buf); err != nil {
					b.Fatal(err)
				}
				h.Sum(nil)
			}
			var read, sha, b3 time.Duration
			b.SetBytes(size)
			for b.Loop() {
				t0 := time.Now()
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
				read += time.Since(t0)
				t0 = time.Now()
				hashFile(sha256.New())
				sha += time.Since(t0)
				t0 = time.Now()
				hashFile(blake3.New())
				b3 += time.Since(t0)
			}
			gbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e9 }
			b.ReportMetric(gbps(read), "read-GB/s")
			b.ReportMetric(gbps(sha), "sha256-GB/s")
			b.ReportMetric(gbps(b3), "blake3-GB/s")
			b.ReportMetric(100*sha.Seconds()/read.Seconds(), "sha256/read-%")
			b.ReportMetric(100*b3.Seconds()/read.Seconds(), "blake3/read-%")
		})
	}
}

// BenchmarkPlace weighs the two ways a cache hit can put an earlier run's
// 64 MiB output in a new run: a hard link to the read-only inode (what
// place does) against a checked copy (copyFile, its fallback).
func BenchmarkPlace(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "src.arrow")
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(src, data, 0o444); err != nil {
		b.Fatal(err)
	}
	sum, err := FileSHA256(src)
	if err != nil {
		b.Fatal(err)
	}
	f := OutputFile{Bytes: int64(len(data)), SHA256: sum}
	dst := filepath.Join(dir, "run", "dst.arrow")
	b.Run("link", func(b *testing.B) {
		for b.Loop() {
			if err := place(src, dst, f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if err := copyFile(src, dst, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCommitDigest weighs what a committed file's two digests cost as
// it is written (digester: sha256, kept for cache addresses and the
// bucket, and BLAKE3 on a second core for large writes) against the
// sha256 alone that commits paid before, over 1 MiB writes as arrow-go
// hands a large batch's buffers.
func BenchmarkCommitDigest(b *testing.B) {
	src := make([]byte, 64<<20)
	for i := range src {
		src[i] = byte(i)
	}
	write := func(w io.Writer) {
		for off := 0; off < len(src); off += 1 << 20 {
			w.Write(src[off : off+1<<20])
		}
	}
	var shaTime, bothTime time.Duration
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		t0 := time.Now()
		h := sha256.New()
		write(h)
		h.Sum(nil)
		shaTime += time.Since(t0)
		t0 = time.Now()
		d := newDigester()
		write(d)
		d.sums()
		bothTime += time.Since(t0)
	}
	gbps := func(d time.Duration) float64 { return float64(len(src)) * float64(b.N) / d.Seconds() / 1e9 }
	b.ReportMetric(gbps(shaTime), "sha256-GB/s")
	b.ReportMetric(gbps(bothTime), "sha256+blake3-GB/s")
	b.ReportMetric(bothTime.Seconds()/shaTime.Seconds(), "both/sha256-time")
}
