package exec

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A trial's artifact is the model its command wrote: a file or a
// directory in the trial's working directory, named by the stage's
// artifact attribute or by the final metrics' "artifact" key (which wins:
// the trainer knows what it wrote). After an ok trial the stage reads it
// whole and writes it to its models port, one row per trial, with its
// digest; from there it is an output like any other (committed
// atomically with the stage, journalled for resume, brought back by a
// cache hit), and the trial's working directory may go.
//
// The path is the trainer's, so it is checked as outside input: it must
// be relative, stay inside the working directory once every symlink on
// the way is followed, and name a regular file or a directory of regular
// files (a FIFO or device would hang or never end the read). A directory
// is kept as a tar archive of its files in name order, with no owners
// and no times, so that the same files always give the same bytes and
// digest.

// artifactKey is the final metrics' key naming the artifact.
const artifactKey = "artifact"

// checkArtifactPath says why rel cannot name a file inside a trial's
// working directory, looking at its text alone.
func checkArtifactPath(rel string) error {
	switch {
	case rel == "":
		return errors.New("the path is empty")
	case strings.ContainsRune(rel, 0):
		return errors.New("the path holds a NUL byte")
	case filepath.IsAbs(rel) || strings.HasPrefix(rel, "/"):
		return errors.New("the path is absolute: name the artifact relative to the trial's working directory, such as \"model.onnx\"")
	}
	clean := filepath.Clean(filepath.FromSlash(rel))
	if clean == "." {
		return errors.New("the path names the working directory itself: name the file or directory the trainer writes, such as \"model.onnx\"")
	}
	for _, part := range strings.Split(clean, string(filepath.Separator)) {
		if part == ".." {
			return errors.New("the path leaves the trial's working directory (..)")
		}
	}
	return nil
}

// errArtifactTooLarge is an artifact larger than a models row carries.
var errArtifactTooLarge = errors.New("larger than a models row carries")

// artifactFormat is the models row's format of an artifact: an ONNX file
// by its name, any other file, or a directory.
func artifactFormat(rel string, dir bool) string {
	switch {
	case dir:
		return tables.FormatTar
	case strings.EqualFold(filepath.Ext(rel), ".onnx"):
		return tables.FormatONNX
	default:
		return tables.FormatFile
	}
}

// readArtifact reads the artifact rel names in the working directory
// root: its models row format and bytes. Each error says what is wrong
// with the path; errArtifactTooLarge is wrapped when the artifact's files
// add up to more than max bytes (they are then not read).
func readArtifact(root, rel string, max int64) (format string, data []byte, err error) {
	if err := checkArtifactPath(rel); err != nil {
		return "", nil, err
	}
	base, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", nil, fmt.Errorf("the working directory: %w", err)
	}
	path, fi, err := inside(base, filepath.Join(base, filepath.FromSlash(rel)))
	if err != nil {
		return "", nil, err
	}
	if !fi.IsDir() {
		if fi.Size() > max {
			return "", nil, fmt.Errorf("%d bytes: %w (%d)", fi.Size(), errArtifactTooLarge, max)
		}
		data, err := readRegular(path, fi)
		return artifactFormat(rel, false), data, err
	}
	data, err = tarDir(base, path, max)
	return tables.FormatTar, data, err
}

// inside resolves path's symlinks and checks that what it names lies in
// base (itself resolved) and is a regular file or a directory.
func inside(base, path string) (string, fs.FileInfo, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, errors.New("no such file or directory in the trial's working directory (the trainer did not write it)")
	}
	if err != nil {
		return "", nil, err
	}
	if r, err := filepath.Rel(base, resolved); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", nil, fmt.Errorf("a symlink leads out of the trial's working directory (to %s)", resolved)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", nil, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return "", nil, fmt.Errorf("not a regular file or directory (%s)", fi.Mode().Type())
	}
	return resolved, fi, nil
}

// readRegular reads a regular file whole, refusing one that changed into
// something else since it was looked at.
func readRegular(path string, want fs.FileInfo) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !os.SameFile(fi, want) {
		return nil, errors.New("the file changed while it was read")
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()))
	if _, err := io.Copy(&buf, io.LimitReader(f, fi.Size()+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != fi.Size() {
		return nil, errors.New("the file changed while it was read")
	}
	return buf.Bytes(), nil
}

// tarDir archives the directory dir (inside base) as a tar of its
// directories and files in name order. A symlink in it is followed when
// it leads to a regular file inside base (the file's bytes are kept);
// one that leads out, to a directory, or to anything else is an error.
func tarDir(base, dir string, max int64) ([]byte, error) {
	type entry struct {
		name string // slash-separated, relative to dir
		path string // resolved
		info fs.FileInfo
	}
	var entries []entry
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		resolved, fi, err := inside(base, p)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if d.Type()&fs.ModeSymlink != 0 && fi.IsDir() {
			return fmt.Errorf("%s: a symlink to a directory (copy the directory in, or link its files)", name)
		}
		if fi.Mode().IsRegular() {
			if total += fi.Size(); total > max {
				return fmt.Errorf("more than %d bytes: %w", max, errArtifactTooLarge)
			}
		}
		entries = append(entries, entry{name: name, path: resolved, info: fi})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, ModTime: epoch, Format: tar.FormatPAX}
		var data []byte
		if e.info.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, e.name+"/", 0o755
		} else {
			if data, err = readRegular(e.path, e.info); err != nil {
				return nil, fmt.Errorf("%s: %w", e.name, err)
			}
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, int64(len(data))
			if e.info.Mode()&0o111 != 0 {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// maxArtifactBytes bounds what a trial's artifact may hold to be kept.
const maxArtifactBytes = evaluation.MaxModelRowBytes
