package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bucket")
	s, err := Open(context.Background(), "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestPutThenGetOnAnotherDirectory(t *testing.T) {
	ctx := context.Background()
	s, bucketDir := openTemp(t)
	data := []byte("arrow bytes")
	src := filepath.Join(t.TempDir(), "out.arrow")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	uri, err := s.Put(ctx, "run-1/stages/a/out.arrow", src)
	if err != nil {
		t.Fatal(err)
	}
	if want := s.URL() + "/run-1/stages/a/out.arrow"; uri != want {
		t.Errorf("uri = %q, want %q", uri, want)
	}
	if key, ok := s.ObjectKey(uri); !ok || key != "run-1/stages/a/out.arrow" {
		t.Errorf("ObjectKey(%q) = %q, %v", uri, key, ok)
	}
	// The object is a plain file in the bucket's directory, with no
	// sidecar.
	entries, err := os.ReadDir(filepath.Join(bucketDir, "run-1", "stages", "a"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"out.arrow"}, names); diff != "" {
		t.Errorf("bucket files (-want +got):\n%s", diff)
	}

	dst := filepath.Join(t.TempDir(), "cache", "run-1", "stages", "a", "out.arrow")
	fetched, err := s.Get(ctx, "run-1/stages/a/out.arrow", dst, sum(data), int64(len(data)))
	if err != nil || !fetched {
		t.Fatalf("Get = %v, %v; want a download", fetched, err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Errorf("downloaded %q, want %q", got, data)
	}
	// A second Get finds the cached copy.
	fetched, err = s.Get(ctx, "run-1/stages/a/out.arrow", dst, sum(data), int64(len(data)))
	if err != nil || fetched {
		t.Errorf("second Get = %v, %v; want the cached copy", fetched, err)
	}
}

func TestGetRefusesACorruptedObject(t *testing.T) {
	ctx := context.Background()
	s, bucketDir := openTemp(t)
	data := []byte("the real content")
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "r/f.arrow", src); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bucketDir, "r", "f.arrow"), []byte("the fake content"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dst := filepath.Join(dir, "f.arrow")
	_, err := s.Get(ctx, "r/f.arrow", dst, sum(data), int64(len(data)))
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("Get = %v, want ErrChecksum", err)
	}
	// Nothing unchecked is left behind, not even the partial download.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %d file(s) after a refused download", len(entries))
	}
}

func TestGetMissingObject(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.Get(context.Background(), "r/none.arrow", filepath.Join(t.TempDir(), "x"), sum(nil), 0)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get = %v, want ErrNotFound", err)
	}
}

func TestKeysStayInTheBucket(t *testing.T) {
	s, _ := openTemp(t)
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", "../x", "/abs", "a/../../x", "a//b", `a\b`, ".."} {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Put(context.Background(), key, src); err == nil {
				t.Errorf("Put(%q) succeeded", key)
			}
			if _, err := s.Get(context.Background(), key, filepath.Join(t.TempDir(), "x"), "", 0); err == nil {
				t.Errorf("Get(%q) succeeded", key)
			}
		})
	}
	if _, ok := s.ObjectKey("file:///elsewhere/r/f.arrow"); ok {
		t.Error("ObjectKey accepted another bucket's URI")
	}
}

func TestOpenRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"file://relative/dir", "gs://b", "s3://", "::"} {
		t.Run(u, func(t *testing.T) {
			s, err := Open(context.Background(), u)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", u)
			}
			if !strings.Contains(err.Error(), "storage") {
				t.Errorf("error %q does not name the storage", err)
			}
		})
	}
}
