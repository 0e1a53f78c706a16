// Package blobstore moves a run's Arrow files between machines through
// object storage (gocloud.dev/blob): file:// for a directory, s3:// for S3
// and S3-compatible stores. A producer uploads a file it has committed; a
// consumer downloads it into its own directory and checks its sha256
// before anything reads it, so a damaged or half-written object is never
// used.
package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	// The drivers sweetspot supports register their URL schemes.
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// ErrChecksum is returned when a downloaded object does not match its
// descriptor: retrying the download cannot help.
var ErrChecksum = errors.New("object does not match its sha256")

// ErrNotFound is returned when an object is not in the bucket.
var ErrNotFound = errors.New("object not found")

// Store is one bucket. It is safe for concurrent use.
type Store struct {
	url    string
	bucket *blob.Bucket
}

// Open opens the bucket at rawURL: file:///abs/dir (created if missing)
// or s3://bucket?region=... (credentials from the AWS environment).
func Open(ctx context.Context, rawURL string) (*Store, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "file":
		// Temporary files go next to the object, so a rename completes
		// every write even when the system's temp dir is another device;
		// attributes are not used, so no sidecar files either.
		q := u.Query()
		for k, v := range map[string]string{"create_dir": "true", "no_tmp_dir": "true", "metadata": "skip"} {
			if q.Get(k) == "" {
				q.Set(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", rawURL, err)
	}
	return &Store{url: strings.TrimSuffix(rawURL, "/"), bucket: b}, nil
}

// CheckURL says what is wrong with a storage URL before anything is
// opened or dialled, so that a typo is a usage error at once: the scheme
// (file or s3), an absolute path for file://, a bucket for s3://.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage URL %q: %w", rawURL, err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" || u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return nil, fmt.Errorf("storage URL %q: a file:// URL needs an absolute path (file:///dir)", rawURL)
		}
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("storage URL %q: no bucket name", rawURL)
		}
	default:
		return nil, fmt.Errorf("storage URL %q: unsupported scheme %q (use file:///dir or s3://bucket)", rawURL, u.Scheme)
	}
	return u, nil
}

// URL is the bucket's URL as given to Open.
func (s *Store) URL() string { return s.url }

// Close releases the bucket.
func (s *Store) Close() error { return s.bucket.Close() }

// URI names key in this bucket; ObjectKey reverses it.
func (s *Store) URI(key string) string {
	base, query, _ := strings.Cut(s.url, "?")
	uri := base + "/" + key
	if query != "" {
		uri += "?" + query
	}
	return uri
}

// ObjectKey returns the key that uri names in this bucket, and false when
// uri is in another bucket.
func (s *Store) ObjectKey(uri string) (string, bool) {
	base, query, _ := strings.Cut(s.url, "?")
	rest, ok := strings.CutPrefix(uri, base+"/")
	if !ok {
		return "", false
	}
	key, q, _ := strings.Cut(rest, "?")
	if q != query || checkKey(key) != nil {
		return "", false
	}
	return key, true
}

// checkKey refuses keys that could leave a file:// bucket's directory or
// that two stores would spell differently.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || path.Clean(key) != key || key == ".." || strings.HasPrefix(key, "../") || strings.Contains(key, "\\") {
		return fmt.Errorf("invalid object key %q", key)
	}
	return nil
}

// Put uploads the file at local as key and returns its URI.
func (s *Store) Put(ctx context.Context, key, local string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	f, err := os.Open(local)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", key, err)
	}
	defer f.Close()
	// Canceling the writer's context before Close abandons the object
	// rather than committing part of it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, key, &blob.WriterOptions{ContentType: "application/vnd.apache.arrow.file"})
	if err != nil {
		return "", fmt.Errorf("upload %s to %s: %w", key, s.url, err)
	}
	if _, err := io.Copy(w, f); err != nil {
		cancel()
		_ = w.Close()
		return "", fmt.Errorf("upload %s to %s: %w", key, s.url, err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("upload %s to %s: %w", key, s.url, err)
	}
	return s.URI(key), nil
}

// Get downloads key into local unless local already holds a file with
// that sha256, and checks the download against sha256 and size before
// moving it into place: local never holds an unchecked object. It says
// whether the object was downloaded (false: local was already right).
func (s *Store) Get(ctx context.Context, key, local, sum string, size int64) (bool, error) {
	if err := checkKey(key); err != nil {
		return false, err
	}
	if got, err := runstore.FileSHA256(local); err == nil && got == sum {
		return false, nil
	}
	r, err := s.bucket.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, fmt.Errorf("download %s from %s: %w", key, s.url, ErrNotFound)
		}
		return false, fmt.Errorf("download %s from %s: %w", key, s.url, err)
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return false, fmt.Errorf("download %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".part-*")
	if err != nil {
		return false, fmt.Errorf("download %s: %w", key, err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return false, fmt.Errorf("download %s from %s: %w", key, s.url, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum || (size >= 0 && n != size) {
		return false, fmt.Errorf("download %s from %s: %w (got %s, %d bytes; want %s, %d bytes)", key, s.url, ErrChecksum, got, n, sum, size)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("download %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return false, fmt.Errorf("download %s: %w", key, err)
	}
	keep = true
	return true, nil
}
