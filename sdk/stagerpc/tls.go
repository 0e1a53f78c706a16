package stagerpc

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
)

// EnvServerTLS gives a plugin process the key it serves with: a
// certificate and its private key, PEM-encoded, that the host made for this
// process alone and trusts for its connection to it. The host's own
// certificate comes in go-plugin's PLUGIN_CLIENT_CERT.
const EnvServerTLS = "SWEETSPOT_PLUGIN_TLS"

// clientCertEnv is go-plugin's variable for the host's certificate.
const clientCertEnv = "PLUGIN_CLIENT_CERT"

// ServerTLS is the plugin's go-plugin TLSProvider: mutual TLS with the key
// the host made for this process (EnvServerTLS), accepting only the host's
// certificate. Without EnvServerTLS (a host that uses go-plugin's AutoMTLS,
// or a debug session) it returns nil, and go-plugin does as before. Both
// variables are removed from the environment once read: the processes the
// plugin starts have no use for them.
func ServerTLS() (*tls.Config, error) {
	pair, ok := os.LookupEnv(EnvServerTLS)
	if !ok {
		return nil, nil
	}
	hostPEM := os.Getenv(clientCertEnv)
	os.Unsetenv(EnvServerTLS)
	os.Unsetenv(clientCertEnv)
	cert, err := tls.X509KeyPair([]byte(pair), []byte(pair))
	if err != nil {
		return nil, errors.New(EnvServerTLS + ": " + err.Error())
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(hostPEM)) {
		return nil, errors.New(EnvServerTLS + " is set, but " + clientCertEnv + " holds no host certificate")
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS12,
		ServerName:   "localhost",
	}, nil
}
