package stagerpc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"google.golang.org/grpc/credentials"
)

// The connection between a host and a plugin process it started is
// authenticated by the kernel where it can be (PeerAuthSupported): the
// Unix socket tells each end which process is at the other (SO_PEERCRED),
// and neither can forge it. The plugin accepts only the host process that
// started it (its process id and user), which must also present a secret
// made for this plugin process alone; the host accepts only a socket that
// the plugin process it started (or one of its descendants) listens on,
// under the same user. It costs no round trip: the host's secret goes out
// ahead of gRPC's own preface, and the plugin answers nothing until it has
// checked it. docs/security.md compares it with the mutual TLS it replaces.

// EnvAuth gives a plugin process what it needs to accept the host that
// started it, as "PID:HEX": the host's process id and the secret (32
// random bytes, hex) that the host made for this process.
const EnvAuth = "SWEETSPOT_PLUGIN_AUTH"

// authPreamble starts every connection from a host, before the secret:
// a server that expects TLS or HTTP/2 refuses it at once.
const authPreamble = "sweetspot-peer-auth/1\n"

const secretBytes = 32

// PeerInfo is the grpc AuthInfo of a connection authenticated by peer
// credentials: the process at the other end, as the kernel reports it.
type PeerInfo struct {
	credentials.CommonAuthInfo
	PID, UID int
}

// AuthType is the name grpc logs.
func (PeerInfo) AuthType() string { return "unix-peer" }

// peerAuth is both ends' grpc transport credentials.
type peerAuth struct {
	secret []byte
	// pid is, for a host, the plugin process it started (the listener
	// must be it or its descendant); for a plugin, the host process (the
	// only client it accepts).
	pid  int
	host bool
}

// NewHostAuth makes the secret for one plugin process: the variable to put
// in its environment (EnvAuth) and the secret the host sends.
func NewHostAuth() (env string, secret []byte, err error) {
	secret = make([]byte, secretBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, err
	}
	return EnvAuth + "=" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(secret), secret, nil
}

// HostAuth is the host's transport credentials for the plugin process
// pid, which got secret in its environment (NewHostAuth).
func HostAuth(pid int, secret []byte) credentials.TransportCredentials {
	return &peerAuth{secret: secret, pid: pid, host: true}
}

// ServerAuth is a plugin's transport credentials when its host gave it
// EnvAuth, else nil (a host that uses TLS, or a test serving in-process).
// It removes EnvAuth from the environment, as ServerTLS removes its
// variables (the plugin's children have no use for them), and with it
// go-plugin's PLUGIN_CLIENT_CERT, so that go-plugin does not make a TLS
// key of its own.
func ServerAuth() (credentials.TransportCredentials, error) {
	v, ok := os.LookupEnv(EnvAuth)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(EnvAuth)
	os.Unsetenv(EnvServerTLS)
	os.Unsetenv(clientCertEnv)
	if !PeerAuthSupported {
		return nil, errors.New(EnvAuth + " is set, but this platform cannot tell a socket's peer")
	}
	pidText, hexText, _ := strings.Cut(v, ":")
	pid, err := strconv.Atoi(pidText)
	secret, herr := hex.DecodeString(hexText)
	if err != nil || pid <= 0 || herr != nil || len(secret) != secretBytes {
		return nil, errors.New(EnvAuth + " is malformed: want the host's process id, a colon and 64 hex digits")
	}
	return &peerAuth{secret: secret, pid: pid}, nil
}

func (a *peerAuth) preamble() []byte {
	return append([]byte(authPreamble), a.secret...)
}

// ClientHandshake is the host's side: the listener must be the plugin
// process it started (or a process that one started, for a plugin that a
// script runs without exec), under the host's own user; then the secret
// goes out, and the connection is gRPC's.
func (a *peerAuth) ClientHandshake(_ context.Context, _ string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if !a.host {
		return nil, nil, errors.New("plugin credentials used to dial")
	}
	pid, uid, err := peerCred(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin socket: %w", err)
	}
	if uid != os.Geteuid() {
		return nil, nil, fmt.Errorf("plugin socket is served by user %d, not this user (%d)", uid, os.Geteuid())
	}
	if pid != a.pid && !descendsFrom(pid, a.pid) {
		return nil, nil, fmt.Errorf("plugin socket is served by process %d, not by the plugin process %d the host started", pid, a.pid)
	}
	if _, err := conn.Write(a.preamble()); err != nil {
		return nil, nil, err
	}
	return conn, PeerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: pid, UID: uid}, nil
}

// ServerHandshake is the plugin's side: the client must be the host
// process named in EnvAuth, under the plugin's own user, and must send the
// secret before anything else.
func (a *peerAuth) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if a.host {
		return nil, nil, errors.New("host credentials used to serve")
	}
	pid, uid, err := peerCred(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("client socket: %w", err)
	}
	if uid != os.Geteuid() || pid != a.pid {
		return nil, nil, fmt.Errorf("refused a connection from process %d (user %d): only the host that started this plugin (process %d, user %d) may connect", pid, uid, a.pid, os.Geteuid())
	}
	// The preamble first, so that a client speaking another protocol is
	// refused at once instead of waiting for bytes it will never send.
	got := make([]byte, len(authPreamble)+secretBytes)
	if _, err := io.ReadFull(conn, got[:len(authPreamble)]); err != nil {
		return nil, nil, fmt.Errorf("reading the host's preamble: %w", err)
	}
	if string(got[:len(authPreamble)]) != authPreamble {
		return nil, nil, fmt.Errorf("refused a connection from process %d: it does not start with the host's preamble", pid)
	}
	if _, err := io.ReadFull(conn, got[len(authPreamble):]); err != nil {
		return nil, nil, fmt.Errorf("reading the host's secret: %w", err)
	}
	if subtle.ConstantTimeCompare(got, a.preamble()) != 1 {
		return nil, nil, fmt.Errorf("refused a connection from process %d: wrong secret", pid)
	}
	return conn, PeerInfo{CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}, PID: pid, UID: uid}, nil
}

func (a *peerAuth) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "unix-peer"}
}

func (a *peerAuth) Clone() credentials.TransportCredentials {
	c := *a
	return &c
}

// OverrideServerName is part of grpc's interface; a Unix socket has no
// server name.
func (a *peerAuth) OverrideServerName(string) error { return nil }
