package pluginhost

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// helperEnv makes the test binary act as a fake plugin (TestHelperProcess).
const helperEnv = "SWEETSPOT_PLUGINHOST_HELPER"

// TestHelperProcess is not a test: a fake plugin runs the test binary with
// helperEnv set, and this serves the stage protocol as the mode says.
func TestHelperProcess(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "":
		return
	case "dial":
		// Another process of the same user that knows a plugin's secret
		// (peerDial).
		fmt.Print(peerDial(os.Getenv(helperEnv+"_ADDR"), os.Getenv(helperEnv+"_SEND")))
		os.Exit(0)
	case "protocol2":
		// A plugin built for a protocol version this host does not speak.
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig: stagerpc.Handshake(sdk.ProtocolVersion + 1),
			VersionedPlugins: map[int]plugin.PluginSet{
				sdk.ProtocolVersion + 1: {stagerpc.PluginName: &stagerpc.Plugin{Impl: stagepb.UnimplementedStageServiceServer{}}},
			},
			GRPCServer: plugin.DefaultGRPCServer,
		})
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode")
	os.Exit(2)
}

// markedPlugin writes a shell-script plugin that records each time it is
// executed in the marker file, then becomes the test plugin. The padding
// line is where a test flips a byte without breaking the script.
func markedPlugin(t *testing.T, dir, name string) (path, marker string) {
	t.Helper()
	marker = filepath.Join(dir, name+".runs")
	path = filepath.Join(dir, sdk.PluginPrefix+name)
	script := fmt.Sprintf("#!/bin/sh\n# padding: 0\necho run >> %s\nexec %s \"$@\"\n", marker, filepath.Join(pluginDir, sdk.PluginPrefix+"test"))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, marker
}

// checkCopy checks that c runs from the checked copy of the executable at
// exe, whose sha256 is sum: a read-only file of the same name, in a
// directory named by the sum, in the host's cache of checked executables.
func checkCopy(t *testing.T, c *Client, exe string, sum []byte) {
	t.Helper()
	got := c.cmd.Path
	want := filepath.Join(os.Getenv(EnvExecCache), hex.EncodeToString(sum), filepath.Base(exe))
	if got != want {
		t.Fatalf("the plugin ran from %s, want the checked copy %s", got, want)
	}
	if c.path != exe {
		t.Errorf("Client.path = %s, want %s", c.path, exe)
	}
	fi, err := os.Lstat(got)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o500 {
		t.Errorf("the copy: %v, %v; want a regular read-only file", fi.Mode(), err)
	}
	if s, _ := lockfile.HashFile(got); !bytes.Equal(s, sum) {
		t.Errorf("the copy's sha256 is %x, want %x", s, sum)
	}
	dir, _ := os.Lstat(filepath.Dir(filepath.Dir(got)))
	if dir == nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("the cache directory is not private: %v", dir.Mode())
	}
}

func runs(marker string) int {
	b, _ := os.ReadFile(marker)
	return strings.Count(string(b), "run")
}

// writeLock locks each plugin to its file's current sha256 on this
// platform.
func writeLock(t *testing.T, path string, plugins map[string]string) {
	t.Helper()
	f := &lockfile.File{Plugins: map[string]*lockfile.Plugin{}}
	for name, exe := range plugins {
		sum, err := lockfile.HashFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		f.Plugins[name] = &lockfile.Plugin{Name: name, Source: "./src/" + name, Version: "1.0.0",
			Hashes: map[string]string{lockfile.Platform(): lockfile.FormatHash(sum)}}
	}
	if err := lockfile.Write(path, f); err != nil {
		t.Fatal(err)
	}
}

func TestLockedPluginRunsUntilItsExecutableChanges(t *testing.T) {
	dir := t.TempDir()
	exe, marker := markedPlugin(t, dir, "locked")
	lock := filepath.Join(dir, lockfile.FileName)
	writeLock(t, lock, map[string]string{"locked": exe})
	want, _ := lockfile.HashFile(exe)

	h, _ := newHost(t, WithSearchPaths(dir), WithLockFile(lock))
	if _, err := h.Resolve("emit", "locked"); err != nil {
		t.Fatal(err)
	}
	c := start(t, h, "locked")
	if res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.l", Config: emitConfig(4, 2)}); err != nil || res.RowsOut["table"] != 4 {
		t.Fatalf("Run = %v, %v", res, err)
	}
	checkCopy(t, c, exe, want)
	infos, err := h.Plugins()
	if err != nil || len(infos) != 1 || infos[0].Checksum != ChecksumOK || infos[0].Locked == nil || infos[0].Locked.Version != "1.0.0" {
		t.Fatalf("Plugins = %+v, %v", infos, err)
	}
	before := runs(marker)
	if before != 2 {
		t.Fatalf("the plugin ran %d times (describe, serve), want 2", before)
	}

	// One byte changes; the size does not.
	b, _ := os.ReadFile(exe)
	b = bytes.Replace(b, []byte("padding: 0"), []byte("padding: 1"), 1)
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	got, _ := lockfile.HashFile(exe)

	h2, _ := newHost(t, WithSearchPaths(dir), WithLockFile(lock))
	check := func(what string, err error) {
		t.Helper()
		var ce *ChecksumError
		if !errors.As(err, &ce) {
			t.Fatalf("%s: %v, want a *ChecksumError", what, err)
		}
		if !errors.Is(err, config.ErrPluginRefused) {
			t.Errorf("%s: the error does not match config.ErrPluginRefused", what)
		}
		msg := err.Error()
		for _, part := range []string{"plugin locked", exe, lock, lockfile.FormatHash(want), lockfile.FormatHash(got), "sweetspot init --upgrade", "was not started"} {
			if !strings.Contains(msg, part) {
				t.Errorf("%s: message lacks %q:\n%s", what, part, msg)
			}
		}
	}
	_, err = h2.Resolve("emit", "locked")
	check("Resolve", err)
	_, err = h2.Start(context.Background(), "locked")
	check("Start", err)
	infos, err = h2.Plugins()
	if err != nil || infos[0].Checksum != ChecksumMismatch || infos[0].Description != nil {
		t.Errorf("Plugins after the change = %+v, %v", infos, err)
	}
	if n := runs(marker); n != before {
		t.Errorf("the changed executable was run %d times; it must not run at all", n-before)
	}
}

func TestLockWithoutThisPlatform(t *testing.T) {
	dir := t.TempDir()
	exe, marker := markedPlugin(t, dir, "other")
	lock := filepath.Join(dir, lockfile.FileName)
	sum, _ := lockfile.HashFile(exe)
	f := &lockfile.File{Plugins: map[string]*lockfile.Plugin{"other": {Name: "other", Source: "./x", Version: "1",
		Hashes: map[string]string{"plan9_arm": lockfile.FormatHash(sum)}}}}
	if err := lockfile.Write(lock, f); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, WithSearchPaths(dir), WithLockFile(lock))
	_, err := h.Start(context.Background(), "other")
	var ce *ChecksumError
	if !errors.As(err, &ce) || ce.Want != nil || !strings.Contains(err.Error(), "records no checksum of it for "+lockfile.Platform()) {
		t.Fatalf("Start = %v", err)
	}
	if runs(marker) != 0 {
		t.Error("an unverifiable plugin was run")
	}
}

// TestUnlockedPluginsStillRun: a plugin the lock file does not name (found
// on the search path) runs, with a warning; the built-in plugin needs no
// entry at all.
func TestUnlockedPluginsStillRun(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, lockfile.FileName)
	exe, _ := markedPlugin(t, dir, "locked")
	writeLock(t, lock, map[string]string{"locked": exe})
	var logs syncBuffer
	h, _ := newHost(t,
		WithSearchPaths(pluginDir, dir),
		WithLockFile(lock),
		WithBuiltin(stages.NewSet("builtin"), []string{filepath.Join(pluginDir, sdk.PluginPrefix+"test")}),
		WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})),
	)
	for _, name := range []string{"test", "builtin"} {
		c := start(t, h, name)
		if res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.u", Config: emitConfig(3, 3)}); err != nil || res.RowsOut["table"] != 3 {
			t.Fatalf("%s: Run = %v, %v", name, res, err)
		}
	}
	if n := strings.Count(logs.String(), "plugin is not in the lock file"); n != 1 {
		t.Errorf("want one warning about the unlocked plugin, got %d:\n%s", n, logs.String())
	}
	infos, err := h.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	status := map[string]ChecksumStatus{}
	for _, p := range infos {
		status[p.Name] = p.Checksum
	}
	if status["builtin"] != ChecksumBuiltin || status["test"] != ChecksumUnlocked || status["locked"] != ChecksumOK {
		t.Errorf("checksum statuses = %v", status)
	}
}

func TestInvalidLockFileStopsTheHost(t *testing.T) {
	lock := filepath.Join(t.TempDir(), lockfile.FileName)
	if err := os.WriteFile(lock, []byte("plugin \"x\" {\n  source = \"a\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(WithLockFile(lock))
	if err == nil || !strings.Contains(err.Error(), lock) || !strings.Contains(err.Error(), `"version" is required`) {
		t.Fatalf("New = %v", err)
	}
	// A missing lock file locks nothing.
	h, err := New(WithLockFile(filepath.Join(t.TempDir(), lockfile.FileName)))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
}

// TestProtocolMismatchAtHandshake: a plugin that serves another protocol
// version is refused with both versions named, even when nothing described
// it first.
func TestProtocolMismatchAtHandshake(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nexec %s -test.run='^TestHelperProcess$'\n", self)
	exe := filepath.Join(dir, sdk.PluginPrefix+"future")
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, WithSearchPaths(dir), WithEnv(helperEnv+"=protocol2"))
	_, err = h.Start(context.Background(), "future")
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.PluginVersion != sdk.ProtocolVersion+1 || pe.Path != exe {
		t.Fatalf("Start = %v, want a *ProtocolError for version %d", err, sdk.ProtocolVersion+1)
	}
	want := fmt.Sprintf("plugin future (%s) speaks stage protocol version %d, but this sweetspot speaks version %d: the plugin is newer: upgrade sweetspot to a release that speaks protocol %d",
		exe, sdk.ProtocolVersion+1, sdk.ProtocolVersion, sdk.ProtocolVersion+1)
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message:\n%s\nwant it to start with:\n%s", err, want)
	}
}

func TestProtocolErrorAdvice(t *testing.T) {
	older := (&ProtocolError{Plugin: "p", Path: "/x", PluginVersion: sdk.ProtocolVersion - 1}).Error()
	for _, want := range []string{
		fmt.Sprintf("speaks stage protocol version %d, but this sweetspot speaks version %d", sdk.ProtocolVersion-1, sdk.ProtocolVersion),
		"the plugin is older: rebuild it against a newer sweetspot SDK",
		"go get github.com/sweetspot-ml/sweetspot@latest",
	} {
		if !strings.Contains(older, want) {
			t.Errorf("%q lacks %q", older, want)
		}
	}
}

// http2Preface is what an HTTP/2 client sends first: the connection
// preface and an empty SETTINGS frame (RFC 9113, section 3.4).
const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + "\x00\x00\x00\x04\x00\x00\x00\x00\x00"

// peerDial connects to a plugin's socket, sends send (hex) and then an
// HTTP/2 preface, and says whether the plugin answered as an HTTP/2 server
// does, with a SETTINGS frame, or closed the connection.
func peerDial(addr, send string) string {
	b, err := hex.DecodeString(send)
	if err != nil {
		return err.Error()
	}
	conn, err := net.Dial("unix", addr)
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	if _, err := conn.Write(append(b, http2Preface...)); err != nil {
		return "refused: " + err.Error()
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	head := make([]byte, 9)
	if _, err := io.ReadFull(conn, head); err != nil {
		return "refused: " + err.Error()
	}
	if head[3] != 0x4 {
		return fmt.Sprintf("answered with frame type %d", head[3])
	}
	return "answered"
}

// TestPeerAuth: where a Unix socket tells its peer, the connection to a
// started plugin is known by that, not by TLS. The plugin's socket is in
// the host's own directory (0700, gone with the host); the plugin answers
// the host when it sends the secret made for that process, and refuses a
// client without it, with another one, or in another process even with the
// right one.
func TestPeerAuth(t *testing.T) {
	if !stagerpc.PeerAuthSupported {
		t.Fatal("this platform's Unix sockets do not tell their peer: TestMutualTLS covers it")
	}
	h, _ := newHost(t)
	c := start(t, h, "test")
	if c.Transport() != TransportPeer {
		t.Fatalf("transport %q, want %q", c.Transport(), TransportPeer)
	}
	if res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.peer", Config: emitConfig(5, 5)}); err != nil || res.RowsOut["table"] != 5 {
		t.Fatalf("Run = %v, %v", res, err)
	}
	addr := c.pc.ReattachConfig().Addr.String()
	dir := filepath.Dir(addr)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 || dir != h.sockDir {
		t.Fatalf("the plugin's socket %s is not in the host's private directory %s: %v, %v", addr, h.sockDir, fi.Mode(), err)
	}
	var secret string
	for _, kv := range c.cmd.Env {
		if v, ok := strings.CutPrefix(kv, stagerpc.EnvAuth+"="); ok {
			_, secret, _ = strings.Cut(v, ":")
		}
	}
	if len(secret) != 64 {
		t.Fatalf("no secret in the plugin's environment (%q)", secret)
	}
	preamble := hex.EncodeToString([]byte("sweetspot-peer-auth/1\n"))
	// Another secret: the first hex digit changed.
	wrong := []byte(secret)
	if wrong[0] == '0' {
		wrong[0] = '1'
	} else {
		wrong[0] = '0'
	}
	for _, tc := range []struct {
		name, send string
		other      bool
		want       string
	}{
		{"the host with the secret", preamble + secret, false, "answered"},
		{"the host without the secret", "", false, "refused"},
		{"the host with another secret", preamble + string(wrong), false, "refused"},
		{"another process with the secret", preamble + secret, true, "refused"},
	} {
		got := ""
		if tc.other {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), helperEnv+"=dial", helperEnv+"_ADDR="+addr, helperEnv+"_SEND="+tc.send)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			got = string(out)
		} else {
			got = peerDial(addr, tc.send)
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	// After all that, the plugin still serves its host.
	if _, err := c.Describe(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the host's socket directory outlives it: %v", err)
	}
}

// TestMutualTLS: where a Unix socket does not tell its peer (here forced
// off), the connection to a started plugin is mutual TLS. The plugin serves
// with the P-256 key the host made for this process (its certificate is the
// one the host trusts), and refuses a client without the host's
// certificate.
func TestMutualTLS(t *testing.T) {
	h, _ := newHost(t)
	h.peerAuth = false
	c := start(t, h, "test")
	if c.Transport() != TransportTLS {
		t.Fatalf("transport %q, want %q", c.Transport(), TransportTLS)
	}
	tc := c.cfg.TLSConfig
	if tc == nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("no mutual TLS: TLSConfig=%+v", tc)
	}
	if res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.tls", Config: emitConfig(5, 5)}); err != nil || res.RowsOut["table"] != 5 {
		t.Fatalf("Run over TLS = %v, %v", res, err)
	}
	addr := c.pc.ReattachConfig().Addr
	dial := func(certs []tls.Certificate) (*tls.Conn, error) {
		conn, err := tls.Dial(addr.Network(), addr.String(), &tls.Config{Certificates: certs, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
		if err != nil {
			return nil, err
		}
		// TLS 1.3 reports a refused client certificate on the first read.
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	conn, err := dial(tc.Certificates)
	if err != nil {
		t.Fatalf("the host's certificate was refused: %v", err)
	}
	peer := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if pub, ok := peer.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("the plugin serves with a %T key, want ECDSA P-256", peer.PublicKey)
	}
	if _, err := peer.Verify(x509.VerifyOptions{Roots: tc.RootCAs, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the plugin's certificate is not the one the host trusts: %v", err)
	}
	if conn, err := dial(nil); err == nil {
		conn.Close()
		t.Error("the plugin accepted a client without a certificate")
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A plugin whose SDK predates the host-made key (here one that serves with
// go-plugin alone) does what go-plugin's AutoMTLS server does: it makes a
// certificate of its own and sends it back in the handshake line. The host
// then trusts that one, and the connection is mutual TLS as before.
func TestMutualTLSWithAPluginThatMakesItsOwnKey(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(pluginDir, sdk.PluginPrefix+"test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, sdk.PluginPrefix+"old-rogue"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, WithSearchPaths(dir))
	c := start(t, h, "old-rogue")
	if c.Transport() != TransportTLS {
		t.Errorf("transport %q, want %q", c.Transport(), TransportTLS)
	}
	if _, err := c.Describe(context.Background()); err != nil {
		t.Fatalf("Describe over the plugin's own certificate: %v", err)
	}
	addr := c.pc.ReattachConfig().Addr
	conn, err := tls.Dial(addr.Network(), addr.String(), &tls.Config{Certificates: c.cfg.TLSConfig.Certificates, InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer := conn.ConnectionState().PeerCertificates[0]
	if pub, ok := peer.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P521() {
		t.Errorf("the plugin serves with a %T key, want go-plugin's own P-521", peer.PublicKey)
	}
	if _, err := peer.Verify(x509.VerifyOptions{Roots: c.cfg.TLSConfig.RootCAs, DNSName: "localhost", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Errorf("the host does not trust the certificate the plugin sent: %v", err)
	}
}

// The plugins' socket directory is made in the user's runtime directory
// when there is one, else in /dev/shm (both in memory on Linux), else in
// the temporary directory; it is the host's alone (0700) and goes with it.
func TestSocketDir(t *testing.T) {
	runtimeDir := t.TempDir()
	shm := "/dev/shm"
	if fi, err := os.Stat(shm); err != nil || !fi.IsDir() {
		shm = os.TempDir()
	}
	for _, tc := range []struct {
		xdg, parent string
	}{
		{runtimeDir, runtimeDir},
		{"", shm},
		{"relative/dir", shm},
	} {
		t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
		h, _ := newHost(t)
		dir, err := h.socketDir()
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Dir(dir) != tc.parent {
			t.Errorf("XDG_RUNTIME_DIR=%q: socket directory %s, want one in %s", tc.xdg, dir, tc.parent)
		}
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("socket directory %s: %v, %v; want mode 0700", dir, fi.Mode(), err)
		}
		// Removed under the host, it is made again.
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		again, err := h.socketDir()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(again); err != nil {
			t.Errorf("the socket directory was not made again: %v", err)
		}
		h.Close()
		if _, err := os.Stat(again); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the socket directory %s outlives its host: %v", again, err)
		}
	}
}

// A host removes the socket directories that hosts which ended without
// Close left in the same place (a killed host's), and leaves those of live
// processes and what is not a socket directory alone.
func TestStaleSocketDirs(t *testing.T) {
	parent := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", parent)
	// A process that has ended, and been waited for.
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s%d-1", socketDirPrefix, gone.Process.Pid)
	live := fmt.Sprintf("%s%d-2", socketDirPrefix, os.Getppid())
	other := "sweetspot-other-1"
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(filepath.Join(parent, d, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := newHost(t)
	dir, err := h.socketDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(dir), fmt.Sprintf("%s%d-", socketDirPrefix, os.Getpid())) {
		t.Errorf("socket directory %s is not named after this host's process id", dir)
	}
	for d, want := range map[string]bool{dead: false, live: true, other: true, filepath.Base(dir): true} {
		_, err := os.Stat(filepath.Join(parent, d))
		if got := err == nil; got != want {
			t.Errorf("%s exists: %v, want %v", d, got, want)
		}
	}
}
