package pluginhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A locked plugin runs from a private copy of the bytes the host checked,
// never from the file it checked. Checking a file by path and then
// executing it by path is a race: between the two, a symbolic link can be
// pointed elsewhere or the file replaced, and the process started is not
// the one checked (go-plugin's SecureConfig hashes the file once more right
// before exec, which narrows the window but does not close it). So the
// host opens the plugin's file once, reads it once, and writes what it
// read, as it hashes it, into a file of its own: execCache.dir/SHA256/NAME,
// a read-only file in a directory only this user can write. If the sha256
// is the locked one, that copy is what runs (and what `describe` runs).
//
// Why a copy, rather than executing the open file through /proc/self/fd/N:
//
//   - a descriptor pins the file, not its bytes: whoever can write the file
//     (the one who can plant a symbolic link in a plugin directory can as
//     well make it point to a file of theirs) can rewrite it in place
//     between the hash and the exec. The copy is written by the host from
//     the very buffer it hashed, where only this user can write;
//   - a script plugin (#!) executed as /proc/self/fd/N has its interpreter
//     open that path again, so the descriptor must survive the exec and
//     leak into the plugin, and the interpreter reads what the file holds
//     by then, not what was hashed;
//   - /proc/self/fd is Linux's; the copy works wherever the host does;
//   - it is cheaper: the copy is content addressed, so it is made once per
//     build (about 95 ms for the 36 MB test plugin, BenchmarkLockCheck/copy),
//     and found by the next check, which hashes the file once per host
//     (about 40 ms, .../hash) and then only stats it (about 10 µs,
//     .../memo). Checking by path, as before, hashed the file twice on
//     every start (the check, then go-plugin's SecureConfig): about 80 ms
//     on each start of a locked plugin (BenchmarkLockedPluginStart).
//
// The price: a copy of each locked build in the user's cache directory
// (entries unused for execCacheTTL are removed), and the plugin sees the
// copy as its executable (os.Executable, a script's $0): a plugin that
// reads files beside its installed executable does not find them beside
// the copy. The copy keeps the executable's name, which the SDK takes the
// plugin's name from.
//
// Hashing is memoized per host by the file's identity (device, inode,
// size, modification and change times): a run checks each plugin once, not
// once per stage. The memo only spares reading a file that has not changed;
// it never decides what runs, since what runs is always the copy named by
// the sum that was compared with the lock file.
type execCache struct {
	dir string // "": the default, resolved on first use

	mu    sync.Mutex // held while copying, so a build is copied once
	ready bool
	err   error

	state  sync.Mutex
	memo   map[string]memoSum // by the file's path
	copies map[string]string  // entries made or found by this process: SHA256/NAME to path
}

// memoSum is the sha256 of a file as it was when hashed.
type memoSum struct {
	id  fileID
	sum []byte
}

// execCacheTTL is how long an entry nobody used stays in the cache.
const execCacheTTL = 30 * 24 * time.Hour

// EnvExecCache overrides where the checked copies of locked plugins live
// (default: the user's cache directory, sweetspot/plugins in it).
const EnvExecCache = "SWEETSPOT_PLUGIN_CACHE"

func newExecCache(dir string) *execCache {
	return &execCache{dir: dir, memo: map[string]memoSum{}, copies: map[string]string{}}
}

// defaultExecCacheDir is $SWEETSPOT_PLUGIN_CACHE, or sweetspot/plugins in
// the user's cache directory, or, without one, a directory of this user's
// in the temporary directory.
func defaultExecCacheDir() string {
	if d := os.Getenv(EnvExecCache); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "sweetspot", "plugins")
	}
	return filepath.Join(os.TempDir(), "sweetspot-"+strconv.Itoa(os.Geteuid()), "plugins")
}

// init makes the cache directory, private to this user, once.
func (x *execCache) init() error {
	if x.ready || x.err != nil {
		return x.err
	}
	if x.dir == "" {
		x.dir = defaultExecCacheDir()
	}
	dir, err := filepath.Abs(x.dir)
	if err == nil {
		x.dir = dir
		err = os.MkdirAll(dir, 0o700)
	}
	if err == nil {
		// The directory and its parent (ours too, unless given) must be
		// this user's and closed to others: whoever can write there could
		// put their own executable under a checked sum.
		err = privateDir(dir)
		if err == nil && os.Getenv(EnvExecCache) == "" && filepath.Base(filepath.Dir(dir)) == "sweetspot" {
			err = privateDir(filepath.Dir(dir))
		}
	}
	if err != nil {
		x.err = fmt.Errorf("the cache of checked plugin executables: %w", err)
		return x.err
	}
	x.ready = true
	return nil
}

// privateDir checks that dir is a directory of this user that nobody else
// can write, closing it to others when it is not.
func privateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("%s belongs to user %d, not to this user (%d); remove it or set %s", dir, uid, os.Geteuid(), EnvExecCache)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("%s is open to other users: %w", dir, err)
		}
	}
	return nil
}

// sumOf returns the sha256 of the file at path, from the memo when the
// file has not changed since it was hashed.
func (x *execCache) sumOf(path string) ([]byte, error) {
	if fi, err := os.Stat(path); err == nil {
		if id, ok := idOf(fi); ok {
			x.state.Lock()
			m, hit := x.memo[path]
			x.state.Unlock()
			if hit && m.id == id {
				return m.sum, nil
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum, _, err := x.read(f, path, nil)
	return sum, err
}

// read hashes the open file f (of path) from its start, writing what it
// reads to w as well when w is not nil, and memoizes the sum.
func (x *execCache) read(f *os.File, path string, w io.Writer) ([]byte, int64, error) {
	before, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if !before.Mode().IsRegular() {
		return nil, 0, fmt.Errorf("%s is not a regular file", path)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	h := sha256.New()
	dst := io.Writer(h)
	if w != nil {
		dst = io.MultiWriter(h, w)
	}
	n, err := io.CopyBuffer(dst, onlyReader{f}, make([]byte, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", path, err)
	}
	sum := h.Sum(nil)
	after, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if id, ok := idOf(before); ok {
		if id2, _ := idOf(after); id2 == id {
			x.state.Lock()
			x.memo[path] = memoSum{id: id, sum: sum}
			x.state.Unlock()
		}
	}
	return sum, n, nil
}

// onlyReader hides *os.File's WriteTo, so io.CopyBuffer uses its buffer.
type onlyReader struct{ io.Reader }

// mismatchError is a file whose sha256 is not the one wanted.
type mismatchError struct{ got []byte }

func (e *mismatchError) Error() string { return "checksum mismatch" }

// checked returns the path of a private copy of the executable at path
// whose sha256 is want (any sha256 when want is nil, for the installer),
// and that sha256. The file at path is opened once; what runs from the
// returned path is exactly the bytes that were hashed. A file whose sum is
// not want gives a *mismatchError carrying its sum, and no copy.
func (x *execCache) checked(path string, want []byte) (string, []byte, error) {
	name := filepath.Base(path)
	// The memo: a file that has not changed since it was hashed and
	// copied needs no reading.
	if sum, ok := x.memoized(path); ok {
		if want != nil && !bytes.Equal(sum, want) {
			return "", nil, &mismatchError{got: sum}
		}
		if exe, ok := x.lookup(sum, name); ok {
			return exe, sum, nil
		}
	}

	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	sum, size, err := x.read(f, path, nil)
	if err != nil {
		return "", nil, err
	}
	if want != nil && !bytes.Equal(sum, want) {
		return "", nil, &mismatchError{got: sum}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.init(); err != nil {
		return "", nil, err
	}
	exe := x.entry(sum, name)
	if x.valid(exe, size) {
		x.use(exe)
		return exe, sum, nil
	}
	// Copy the same open file again, hashing what is copied: the copy's
	// bytes are the ones hashed, whatever happened to the file since.
	tmp, err := x.copyChecked(f, path, sum, want)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Dir(exe), 0o700); err != nil {
		os.Remove(tmp)
		return "", nil, err
	}
	if err := os.Rename(tmp, exe); err != nil {
		os.Remove(tmp)
		return "", nil, err
	}
	x.use(exe)
	x.trim()
	return exe, sum, nil
}

// memoized returns the memoized sum of path when the file is unchanged.
func (x *execCache) memoized(path string) ([]byte, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false
	}
	id, ok := idOf(fi)
	if !ok {
		return nil, false
	}
	x.state.Lock()
	defer x.state.Unlock()
	m, hit := x.memo[path]
	return m.sum, hit && m.id == id
}

// lookup returns the entry of sum for name when this process made or
// found it (and it is still there).
func (x *execCache) lookup(sum []byte, name string) (string, bool) {
	key := hex.EncodeToString(sum) + "/" + name
	x.state.Lock()
	exe, ok := x.copies[key]
	x.state.Unlock()
	if !ok {
		return "", false
	}
	if fi, err := os.Lstat(exe); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	return exe, true
}

func (x *execCache) entry(sum []byte, name string) string {
	return filepath.Join(x.dir, hex.EncodeToString(sum), name)
}

// valid says whether exe is a finished entry: a regular file of this user,
// read-only, of the size hashed. Entries are written whole under a
// temporary name and renamed into place, by this user only.
func (x *execCache) valid(exe string, size int64) bool {
	fi, err := os.Lstat(exe)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size || fi.Mode().Perm()&0o222 != 0 {
		return false
	}
	if uid, ok := ownerOf(fi); ok && uid != os.Geteuid() {
		return false
	}
	return true
}

// use records that exe was used, for lookup and for trim.
func (x *execCache) use(exe string) {
	x.state.Lock()
	x.copies[filepath.Base(filepath.Dir(exe))+"/"+filepath.Base(exe)] = exe
	x.state.Unlock()
	now := time.Now()
	_ = os.Chtimes(filepath.Dir(exe), now, now)
}

// copyChecked copies f from its start into a new read-only file in the
// cache directory, hashing what it copies, and returns the file's path once
// the hash is sum (and want, if any).
func (x *execCache) copyChecked(f *os.File, path string, sum, want []byte) (string, error) {
	// While the copy is open for writing, no process may be forked: a child
	// would inherit the descriptor until its own exec, and executing the
	// copy meanwhile fails with ETXTBSY (golang.org/issue/22315). Holding
	// ForkLock for reading is how the os package keeps forks out.
	syscall.ForkLock.RLock()
	tmp, err := os.CreateTemp(x.dir, ".copy-*")
	if err != nil {
		syscall.ForkLock.RUnlock()
		return "", err
	}
	got, _, rerr := x.read(f, path, tmp)
	cerr := tmp.Chmod(0o500)
	if err := tmp.Close(); cerr == nil {
		cerr = err
	}
	syscall.ForkLock.RUnlock()
	switch {
	case rerr != nil:
		err = rerr
	case cerr != nil:
		err = cerr
	case !bytes.Equal(got, sum) || (want != nil && !bytes.Equal(got, want)):
		// The file changed between the two reads; what was copied is not
		// what was checked.
		err = fmt.Errorf("%s changed while it was being checked", path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// trim removes entries unused for execCacheTTL, and copies left half
// made. An entry removed under a process that found it just before makes
// that process copy it again, or, in the worst case, fail one start.
func (x *execCache) trim() {
	entries, err := os.ReadDir(x.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		p := filepath.Join(x.dir, e.Name())
		switch {
		case e.IsDir() && time.Since(fi.ModTime()) > execCacheTTL:
			_ = os.RemoveAll(p)
		case !e.IsDir() && time.Since(fi.ModTime()) > time.Hour:
			_ = os.Remove(p)
		}
	}
}
