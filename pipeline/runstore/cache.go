package runstore

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Key returns the content address of an execution's inputs.
func (in CacheInputs) Key() string {
	data, _ := json.Marshal(in)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// cacheEntry is what the cache keeps under a key: where the outputs of
// the execution with that key are, in which run.
type cacheEntry struct {
	Run   string       `json:"run"`
	Stage string       `json:"stage"`
	Files []OutputFile `json:"files"`
}

func (s *Store) cachePath(key string) string {
	return filepath.Join(s.Root, ".cache", key[:2], key+".json")
}

// Remember records that run's stage produced files for key.
func (s *Store) Remember(key, run, stage string, files []OutputFile) error {
	data, err := json.Marshal(cacheEntry{Run: run, Stage: stage, Files: files})
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.cachePath(key), data)
}

// Hit is an earlier execution's outputs, verified and placed in a run.
type Hit struct {
	Run   string
	Files []OutputFile
}

// Recall finds key's outputs from an earlier run, checks that every file is
// still there as that run recorded it (VerifyFile), and places them in run
// as stage's outputs, at the paths stage's own outputs have. (Two stages of
// one pipeline can share a key, such as a chain of identical transforms of
// the same data, so the earlier run's paths may name another stage.) ok is
// false when there is nothing usable; a damaged file is also a miss, and
// err (a *DamagedFileError naming the earlier run's stage, port and file)
// says why.
func (s *Store) Recall(key string, into *Run, stage string) (hit *Hit, ok bool, err error) {
	data, err := os.ReadFile(s.cachePath(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil {
		// A damaged entry is a miss, not a failure: the stage just runs.
		return nil, false, nil
	}
	if e.Run == into.ID() || e.Run != filepath.Base(e.Run) || strings.HasPrefix(e.Run, ".") {
		return nil, false, nil
	}
	for _, f := range e.Files {
		if _, want := f.digest(); want == "" {
			return nil, false, nil
		}
		if err := VerifyFile(filepath.Join(s.Root, e.Run, f.Path), f); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, false, nil // that run was removed: a plain miss
			}
			return nil, false, &DamagedFileError{Run: e.Run, Stage: e.Stage, Port: f.Port, Round: f.Round, File: f.Path, Err: err}
		}
	}
	files := make([]OutputFile, len(e.Files))
	for i, f := range e.Files {
		files[i] = f
		files[i].Path = OutputRel(stage, f.Round, f.Port)
		if err := place(filepath.Join(s.Root, e.Run, f.Path), into.Path(files[i].Path), f); err != nil {
			return nil, false, fmt.Errorf("take %s from run %s: %w", f.Path, e.Run, err)
		}
	}
	return &Hit{Run: e.Run, Files: files}, true, nil
}

// FileSHA256 returns the hex sha256 of a file's contents.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// place puts the verified file src, recorded as f, at dst: a hard link to
// the same inode when the file system allows, else a checked copy.
//
// A hard link shares the inode with the earlier run, so the inode is made
// read-only first (its write bits cleared), as PortWriter.Commit makes
// every committed file: nothing writes to it by accident, and since every
// read verifies a file against its run's manifest (OpenFiles), damage done
// to the shared inode anyway (by root, or after a chmod) is refused in both
// runs rather than used in either. A copy would keep runs apart even then, but costs a
// second full write and the disk space of every cached output: measured by
// BenchmarkPlace, placing a 64 MiB output took about 65 µs as a link and
// about 345 ms as a checked copy (written, synced and hashed), and 64 MiB
// more on disk, on the development machine, for every stage of every run
// served from the cache.
func place(src, dst string, f OutputFile) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-link")
	_ = os.Remove(tmp)
	if err := readOnlyPath(src); err == nil {
		if err := os.Link(src, tmp); err == nil {
			if err := os.Rename(tmp, dst); err != nil {
				os.Remove(tmp)
				return err
			}
			return nil
		}
	}
	return copyFile(src, dst, f)
}

// readOnlyPath clears the write bits of the file at path, unless it has
// none (a chmod, even to the same mode, would change the file's change
// time, and so its identity in verified).
func readOnlyPath(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o222 == 0 {
		return nil
	}
	return os.Chmod(path, fi.Mode().Perm()&^0o222)
}

// copyFile copies src to dst atomically, read-only, and checks the copy
// against f.
func copyFile(src, dst string, f OutputFile) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := out.Name()
	buf := bufPool.Get().(*[]byte)
	_, werr := io.CopyBuffer(out, onlyReader{in}, *buf)
	bufPool.Put(buf)
	if werr == nil {
		werr = out.Sync()
	}
	if werr == nil {
		werr = readOnly(out)
	}
	if err := errors.Join(werr, out.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := VerifyFile(tmp, f); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
