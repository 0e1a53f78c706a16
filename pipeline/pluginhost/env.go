package pluginhost

import (
	"os"
	"slices"
	"strings"
)

// BaseEnv lists the host's environment variables that every plugin process
// inherits: what a process needs to find programs, write temporary files,
// format text and run the Go runtime. Nothing here carries a credential;
// anything else reaches a plugin only when its stage block lists it in
// `pass_env`, or when the host sets it itself (its SWEETSPOT_* plumbing and
// go-plugin's handshake variables).
var BaseEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ",
	"LANG", "LANGUAGE", "LC_*",
	// Where the system's TLS roots are, when not in the usual place.
	"SSL_CERT_FILE", "SSL_CERT_DIR",
	// The Go runtime's knobs: a Go plugin behaves as the host does, and
	// GOCOVERDIR lets a coverage build of a plugin record its coverage.
	"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK", "GORACE", "GOCOVERDIR",
}

// HostEnvPrefixes are the prefixes of the variables the host and go-plugin
// set for a plugin themselves; a stage cannot pass them through from the
// host's environment (SWEETSPOT_REATTACH or the handshake cookie in a
// plugin's environment would change what the plugin is).
var HostEnvPrefixes = []string{"SWEETSPOT_", "PLUGIN_"}

// inBaseEnv reports whether name is in BaseEnv (a trailing * matches any
// suffix).
func inBaseEnv(name string) bool {
	for _, b := range BaseEnv {
		if p, ok := strings.CutSuffix(b, "*"); ok {
			if strings.HasPrefix(name, p) {
				return true
			}
		} else if name == b {
			return true
		}
	}
	return false
}

// pluginEnv builds a plugin's environment from the host's (environ, as
// os.Environ returns it): the BaseEnv variables, then those named in pass
// that are set, then set ("K=V", the host's own plumbing), later ones
// winning.
func pluginEnv(environ, pass, set []string) []string {
	vals := map[string]string{}
	var order []string
	put := func(k, v string) {
		if _, ok := vals[k]; !ok {
			order = append(order, k)
		}
		vals[k] = v
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if inBaseEnv(k) || slices.Contains(pass, k) && !hostOwned(k) {
			put(k, v)
		}
	}
	for _, kv := range set {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			put(k, v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vals[k])
	}
	return out
}

func hostOwned(name string) bool {
	for _, p := range HostEnvPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// describeEnv is the environment of `PLUGIN describe`: BaseEnv and the
// host's variables, as for a started plugin with nothing passed through.
func describeEnv(set []string) []string {
	return pluginEnv(os.Environ(), nil, set)
}
