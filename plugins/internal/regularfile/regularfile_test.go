package regularfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Only a regular file is opened; a FIFO with no writer, a device that
// never ends, a directory and a socket are refused at once, before a
// byte is read, and their kind is what the operating system says.
func TestOpenRefusesAllButRegularFiles(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "runs.csv")
	if err := os.WriteFile(regular, []byte("params,loss\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	sock := filepath.Join(dir, "sock")
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(regular, false)
	if err != nil {
		t.Fatalf("a regular file: %v", err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "params,loss\n" {
		t.Errorf("read %q", got)
	}
	for path, want := range map[string]string{
		fifo:        "a named pipe",
		"/dev/zero": "a character device",
		dir:         "a directory",
		sock:        "a socket",
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			f, err := Open(path, false)
			if f != nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || !errors.Is(err, ErrNotRegular) || nr.Path != path || len(nr.Kind) < len(want) || nr.Kind[:len(want)] != want {
				t.Errorf("%s (mode %v): %v, want a *NotRegularError saying %q", path, st.Mode().Type(), err, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Open is still waiting after 10 s", path)
		}
	}
	// Allowed, a device is opened; a directory never is.
	if f, err := Open("/dev/zero", true); err != nil {
		t.Errorf("/dev/zero allowed: %v", err)
	} else {
		f.Close()
	}
	if _, err := Open(dir, true); !errors.Is(err, ErrNotRegular) {
		t.Errorf("a directory, allowed: %v", err)
	}
}
