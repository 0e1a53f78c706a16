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
// still there with its recorded hash, and links (or copies) them into run
// as stage's outputs, at the paths stage's own outputs have. (Two stages of
// one pipeline can share a key, such as a chain of identical transforms of
// the same data, so the earlier run's paths may name another stage.) ok is
// false when there is nothing usable.
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
	if e.Run == into.ID() {
		return nil, false, nil
	}
	for _, f := range e.Files {
		if sum, err := FileSHA256(filepath.Join(s.Root, e.Run, f.Path)); err != nil || sum != f.SHA256 {
			return nil, false, nil
		}
	}
	files := make([]OutputFile, len(e.Files))
	for i, f := range e.Files {
		files[i] = f
		files[i].Path = OutputRel(stage, f.Round, f.Port)
		if err := linkOrCopy(filepath.Join(s.Root, e.Run, f.Path), into.Path(files[i].Path)); err != nil {
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

// linkOrCopy places src at dst: a hard link when the file system allows
// (outputs are never modified in place), else a copy written atomically.
func linkOrCopy(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return WriteFileAtomic(dst, data)
}
