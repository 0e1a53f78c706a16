//go:build linux

package stagerpc

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen serves one connection on a Unix socket in a fresh directory and
// hands the accepted end to accepted.
func listen(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	addr = filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			ch <- c
		}
	}()
	return addr, ch
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serverAuth is a plugin's credentials as ServerAuth makes them from the
// variable NewHostAuth returns.
func serverAuth(t *testing.T, env string) *peerAuth {
	t.Helper()
	name, value, _ := strings.Cut(env, "=")
	if name != EnvAuth {
		t.Fatalf("NewHostAuth's variable is %q, want %s", name, EnvAuth)
	}
	t.Setenv(EnvAuth, value)
	t.Setenv(clientCertEnv, "a certificate")
	creds, err := ServerAuth()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := os.LookupEnv(EnvAuth); ok {
		t.Error("ServerAuth left the secret in the environment")
	}
	if _, ok := os.LookupEnv(clientCertEnv); ok {
		t.Error("ServerAuth left PLUGIN_CLIENT_CERT, which makes go-plugin make a TLS key")
	}
	return creds.(*peerAuth)
}

// The plugin's end accepts the host process named in its variable when it
// sends the secret first, and nothing else: not a client that sends
// another secret, nor gRPC's preface alone, nor another process.
func TestServerHandshake(t *testing.T) {
	env, secret, err := NewHostAuth()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(env, ":"+hex.EncodeToString(secret)) || !strings.Contains(env, "="+strconv.Itoa(os.Getpid())+":") {
		t.Fatalf("variable %q does not hold this process's id and the secret", env)
	}
	srv := serverAuth(t, env)
	other := append([]byte(nil), secret...)
	other[0] ^= 1
	for _, tc := range []struct {
		name  string
		send  []byte
		pid   int // the host process the plugin expects
		allow bool
	}{
		{"the host with its secret", append([]byte(authPreamble), secret...), os.Getpid(), true},
		{"another secret", append([]byte(authPreamble), other...), os.Getpid(), false},
		{"gRPC's preface alone", []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + strings.Repeat("\x00", 40)), os.Getpid(), false},
		{"another process", append([]byte(authPreamble), secret...), os.Getppid(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := listen(t)
			c := dial(t, addr)
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			a := *srv
			a.pid = tc.pid
			conn, info, err := a.ServerHandshake(<-accepted)
			if tc.allow != (err == nil) {
				t.Fatalf("ServerHandshake = %v, want allowed %v", err, tc.allow)
			}
			if err != nil {
				return
			}
			if pi := info.(PeerInfo); pi.PID != os.Getpid() || pi.UID != os.Geteuid() {
				t.Errorf("peer %+v, want this process", pi)
			}
			// What follows the secret is the connection's.
			c.Write([]byte("next"))
			buf := make([]byte, 4)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(buf); err != nil || string(buf) != "next" {
				t.Errorf("after the secret: %q, %v", buf, err)
			}
		})
	}
}

// The host's end sends its secret only to a socket that the plugin process
// it started listens on (or a process that one started), and the secret
// is the first thing on the connection.
func TestClientHandshake(t *testing.T) {
	_, secret, err := NewHostAuth()
	if err != nil {
		t.Fatal(err)
	}
	// A child of this process, for a process that does not listen and one
	// whose descendant does.
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	if !descendsFrom(child.Process.Pid, os.Getpid()) || descendsFrom(os.Getpid(), child.Process.Pid) {
		t.Fatal("descendsFrom does not follow /proc's parents")
	}
	for _, tc := range []struct {
		name  string
		pid   int // the plugin process the host started; this one listens
		allow bool
	}{
		{"the plugin process", os.Getpid(), true},
		{"a process the plugin process started", os.Getppid(), true},
		{"another process", child.Process.Pid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, accepted := listen(t)
			c := dial(t, addr)
			_, _, err := HostAuth(tc.pid, secret).ClientHandshake(context.Background(), "", c)
			if tc.allow != (err == nil) {
				t.Fatalf("ClientHandshake = %v, want allowed %v", err, tc.allow)
			}
			srv := <-accepted
			srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			got := make([]byte, len(authPreamble)+secretBytes)
			n, _ := srv.Read(got)
			if !tc.allow {
				if n > 0 {
					t.Errorf("the host sent %d bytes to a socket it refused", n)
				}
				return
			}
			if want := append([]byte(authPreamble), secret...); !bytes.Equal(got[:n], want) {
				t.Errorf("the host sent %q, want the preamble and the secret", got[:n])
			}
		})
	}
}

func TestServerAuthMalformed(t *testing.T) {
	for _, v := range []string{"", "12", "x:" + strings.Repeat("ab", 32), "12:" + strings.Repeat("ab", 31), "12:" + strings.Repeat("zz", 32), "0:" + strings.Repeat("ab", 32)} {
		t.Setenv(EnvAuth, v)
		if _, err := ServerAuth(); err == nil || !strings.Contains(err.Error(), EnvAuth) {
			t.Errorf("%s=%q: err = %v, want a message naming the variable", EnvAuth, v, err)
		}
	}
	os.Unsetenv(EnvAuth)
	if creds, err := ServerAuth(); creds != nil || err != nil {
		t.Errorf("without %s: %v, %v; want neither", EnvAuth, creds, err)
	}
}
