package pluginhost

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// On Linux the connection to a plugin process is known by its Unix
// socket's peer credentials and a secret (pluginTransport,
// stagerpc.EnvAuth). Elsewhere, and to a plugin whose SDK predates that, it
// is mutual TLS, as with go-plugin's AutoMTLS, but with cheaper keys. AutoMTLS makes an ECDSA P-521 key and
// certificate on each side for every process, and the TLS handshake signs
// and verifies with them: on the critical path of each start that is two
// key generations, two self-signatures, two handshake signatures and two
// verifications on a curve about 30 times slower than P-256 (some 10 ms of
// a 70 ms start on an idle machine, several times that on a busy one).
//
// Here the host makes one P-256 key and certificate per Host, which it
// hands to every plugin as go-plugin's PLUGIN_CLIENT_CERT, and a P-256 key
// and certificate for each plugin process, which it hands to that process
// alone (stagerpc.EnvServerTLS) and trusts for that connection only. A
// plugin built with an SDK that reads it serves with that key, and makes
// none; an older plugin does what go-plugin's AutoMTLS server does (a P-521
// certificate of its own, sent back in the handshake line, which the host
// then trusts instead). Either way each side proves it holds a key the other
// expects, and no other process's certificate is trusted: a plugin never
// sees the host's key, nor another plugin's.

// tlsIdentity is a key and its self-signed certificate.
type tlsIdentity struct {
	cert    tls.Certificate
	leaf    *x509.Certificate
	certPEM []byte
	keyPEM  []byte
}

// newTLSIdentity makes a P-256 key and a self-signed certificate for
// "localhost" (go-plugin's server name), usable by either end.
func newTLSIdentity() (*tlsIdentity, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"sweetspot"}},
		DNSNames:              []string{"localhost"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	id := &tlsIdentity{
		cert:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		leaf:    leaf,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}
	return id, nil
}

// hostIdentity is the host's TLS identity, made once per Host.
type hostIdentity struct {
	once sync.Once
	id   *tlsIdentity
	err  error
}

func (h *hostIdentity) get() (*tlsIdentity, error) {
	h.once.Do(func() { h.id, h.err = newTLSIdentity() })
	return h.id, h.err
}

// spareIdentity makes each plugin process's key ahead of its start: a
// P-256 key and a self-signed certificate cost 0.15 to 0.4 ms, on the
// critical path of every start when made there. take hands out the key made
// in the background since the last take (or makes one when none is ready)
// and starts making the next; no key is handed out twice.
type spareIdentity struct {
	mu    sync.Mutex
	ready chan identityResult
}

type identityResult struct {
	id  *tlsIdentity
	err error
}

func (s *spareIdentity) take() (*tlsIdentity, error) {
	s.mu.Lock()
	if s.ready == nil {
		s.ready = make(chan identityResult, 1)
	}
	ready := s.ready
	s.mu.Unlock()
	var r identityResult
	select {
	case r = <-ready:
	default:
		r.id, r.err = newTLSIdentity()
	}
	go func() {
		id, err := newTLSIdentity()
		select {
		case ready <- identityResult{id, err}:
		default: // another start's spare is already waiting
		}
	}()
	return r.id, r.err
}

// pluginTransport returns, for one plugin process, the host's TLS config
// and the variables for the process's environment, and where a Unix socket
// tells its peer (stagerpc.PeerAuthSupported, Host.peerAuth) the secret of the peer
// authentication that takes TLS's place. There the process gets no key:
// the TLS config holds only the host's certificate, which a plugin whose
// SDK predates peer authentication gets too (go-plugin's
// PLUGIN_CLIENT_CERT) and answers as go-plugin's AutoMTLS server does,
// with a certificate of its own in the handshake line; the connection to
// that plugin is mutual TLS (see connect). Its socket, and every plugin's,
// is made in the host's private directory (socketDir).
func (h *Host) pluginTransport() (*tls.Config, []string, []byte, error) {
	if !h.peerAuth {
		cfg, env, err := h.pluginTLS()
		return cfg, env, nil, err
	}
	host, err := h.tlsID.get()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("host TLS key: %w", err)
	}
	dir, err := h.socketDir()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin socket directory: %w", err)
	}
	authEnv, secret, err := stagerpc.NewHostAuth()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin secret: %w", err)
	}
	cfg := &tls.Config{
		Certificates:     []tls.Certificate{host.cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		MinVersion:       tls.VersionTLS12,
		ServerName:       "localhost",
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	env := []string{
		"PLUGIN_CLIENT_CERT=" + string(host.certPEM),
		authEnv,
		// go-plugin's variable: where the plugin makes its socket.
		"PLUGIN_UNIX_SOCKET_DIR=" + dir,
	}
	return cfg, env, secret, nil
}

// socketDir is the host's private directory (mode 0700, made once, removed
// by Close) that its plugins make their sockets in: no other user can
// reach them, whatever the socket files' own modes. It is made in memory
// where it can be (socketParents): each plugin start makes and removes
// files there (go-plugin's socket and the temporary file it names it
// after), which cost 0.4 to 0.6 ms of every start on ext4 against 0.03 ms
// on tmpfs.
func (h *Host) socketDir() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sockDir != "" {
		// Made again if something removed it (a cleaner of temporary
		// files, another host that took this one for dead).
		if _, err := os.Lstat(h.sockDir); !errors.Is(err, os.ErrNotExist) {
			return h.sockDir, nil
		}
		h.sockDir = ""
	}
	var firstErr error
	for _, parent := range socketParents() {
		dir, err := os.MkdirTemp(parent, socketDirPrefix+strconv.Itoa(os.Getpid())+"-")
		if err == nil {
			// MkdirTemp makes it 0700 less the umask; say 0700 outright.
			if err = os.Chmod(dir, 0o700); err != nil {
				os.Remove(dir)
			}
		}
		if err == nil {
			h.sockDir = dir
			removeStaleSocketDirs(parent)
			return dir, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", firstErr
}

// socketDirPrefix starts the name of a host's socket directory, followed
// by the host's process id.
const socketDirPrefix = "sweetspot-plugins-"

// removeStaleSocketDirs removes the socket directories in parent of this
// user's hosts that ended without Close (killed, or exited early): their
// plugins end with them, and the sockets left behind would pile up in
// memory. A directory whose process id is alive (its host, or a process
// that took its id since) is left alone.
func removeStaleSocketDirs(parent string) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), socketDirPrefix)
		pidText, _, found := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || !found || err != nil || pid <= 0 || pid == os.Getpid() || !e.IsDir() || processAlive(pid) {
			continue
		}
		path := filepath.Join(parent, e.Name())
		fi, err := os.Lstat(path)
		if err != nil || !fi.IsDir() {
			continue
		}
		if uid, ok := ownerOf(fi); !ok || uid != os.Geteuid() {
			continue
		}
		os.RemoveAll(path)
	}
}

// processAlive reports whether a process with this id exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}

// socketParents are where socketDir tries to make its directory, in turn:
// the user's runtime directory (XDG_RUNTIME_DIR, a tmpfs of the user's own
// where sockets belong), /dev/shm (a tmpfs on Linux), then the temporary
// directory.
func socketParents() []string {
	var dirs []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(d) {
		dirs = append(dirs, d)
	}
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		dirs = append(dirs, "/dev/shm")
	}
	return append(dirs, os.TempDir())
}

// pluginTLS returns, for one plugin process, the host's TLS config (which
// trusts only that process's certificate until go-plugin replaces it with
// the one an older plugin sends back) and the variables that give the
// process its key and the host's certificate.
func (h *Host) pluginTLS() (*tls.Config, []string, error) {
	host, err := h.tlsID.get()
	if err != nil {
		return nil, nil, fmt.Errorf("host TLS key: %w", err)
	}
	srv, err := h.spareID.take()
	if err != nil {
		return nil, nil, fmt.Errorf("plugin TLS key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.leaf)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{host.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
		// X25519 alone: Go's default first offers the hybrid
		// X25519MLKEM768, whose key generation and encapsulation about
		// double the handshake's cost (1.2 ms against 0.6 to 0.9 ms for
		// both ends in one process on a 2-core machine), to guard against a
		// future quantum computer recording traffic that never leaves
		// this machine's unix socket. Authentication is unchanged.
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	env := []string{
		// go-plugin's name: an AutoMTLS server trusts this certificate.
		"PLUGIN_CLIENT_CERT=" + string(host.certPEM),
		stagerpc.EnvServerTLS + "=" + string(bytes.Join([][]byte{srv.certPEM, srv.keyPEM}, nil)),
	}
	return cfg, env, nil
}
