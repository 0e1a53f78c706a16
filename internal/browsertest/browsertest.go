//go:build unix

// Package browsertest drives Debian's headless Chromium for the tests of
// the pages sweetspot writes (the report) and serves (sweetspot ui): it
// finds the browser (a test fails without it in CI, where `make chromium`
// installs it), runs it on a page with a fresh profile and a net log, and
// reads back every request the page made, and what a screenshot painted.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
)

// Chromium returns the browser; when it is absent the test fails under
// make test and CI and skips elsewhere (testenv.Missing).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "chromium is not installed: `make chromium` installs it (Debian's chromium package)")
	return ""
}

// Args are the flags every run of the browser gets: headless, a fresh
// profile, no background traffic of its own, every host name but
// 127.0.0.1 resolving to nothing, and a net log of every request.
func Args(t testing.TB, netlog string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
		"--user-data-dir=" + t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--log-net-log=" + netlog,
		"--hide-scrollbars",
		"--enable-logging=stderr", "--v=0",
	}
}

// Command prepares the browser on url; a timeout kills it with the
// helper processes it starts.
func Command(ctx context.Context, bin string, args []string, url string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// Browse runs the browser once on url (a file:// or http:// address)
// with extra flags (--dump-dom, --screenshot=...), and returns its stdout
// and stderr.
func Browse(t testing.TB, bin, url, netlog string, extra ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := Command(ctx, bin, append(Args(t, netlog), extra...), url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", url, err, Tail(errb.String(), 2000))
	}
	return out.String(), errb.String()
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// PageRequests returns the URLs of the requests a page made, from the
// net log, sorted. The browser makes requests of its own (component
// updates, time sync) even with background networking disabled; those
// carry no initiating origin, while everything a page asks for is
// initiated by it, or keyed to its file:// site, or (the navigation
// itself) addressed to base, the server under test ("" for a file).
func PageRequests(t testing.TB, netlog, base string) []string {
	t.Helper()
	data, err := os.ReadFile(netlog)
	if err != nil {
		t.Fatalf("net log: %v", err)
	}
	var log struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int            `json:"type"`
			Params map[string]any `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(data, &log); err != nil {
		t.Fatalf("net log %s: %v", netlog, err)
	}
	start, ok := log.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		t.Fatal("net log has no URL_REQUEST_START_JOB event type; has Chromium's format changed?")
	}
	var out []string
	for _, e := range log.Events {
		if e.Type != start {
			continue
		}
		url, _ := e.Params["url"].(string)
		if url == "" {
			continue
		}
		initiator, _ := e.Params["initiator"].(string)
		nik, _ := e.Params["network_isolation_key"].(string)
		if initiator != "not an origin" || strings.Contains(nik, "file://") || (base != "" && strings.HasPrefix(url, base+"/")) {
			out = append(out, url)
		}
	}
	sort.Strings(out)
	return out
}

// ConsoleErrors returns what pages wrote to the console, from the
// browser's log on stderr (with --enable-logging=stderr): script errors,
// and what the content security policy blocked.
func ConsoleErrors(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, ":CONSOLE") {
			out = append(out, Tail(line, 300))
		}
	}
	return out
}

// ReadPNG decodes a screenshot.
func ReadPNG(t testing.TB, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return img
}

// CountColor counts the pixels of r (all of img when r is empty) within
// tol of rgb on every channel.
func CountColor(img image.Image, r image.Rectangle, rgb [3]uint8, tol int) int {
	if r.Empty() {
		r = img.Bounds()
	}
	r = r.Intersect(img.Bounds())
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if near(int(cr>>8), int(rgb[0]), tol) && near(int(cg>>8), int(rgb[1]), tol) && near(int(cb>>8), int(rgb[2]), tol) {
				n++
			}
		}
	}
	return n
}

func near(a, b, tol int) bool { return a-b <= tol && b-a <= tol }

// Keep copies a screenshot of a failed test where it outlives the test's
// directory, and logs where.
func Keep(t testing.TB, shot, name string) {
	dst := os.TempDir() + "/" + name
	if data, err := os.ReadFile(shot); err == nil && os.WriteFile(dst, data, 0o644) == nil {
		t.Logf("screenshot kept at %s", dst)
	}
}
