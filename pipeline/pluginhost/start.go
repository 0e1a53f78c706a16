package pluginhost

import "github.com/sweetspot-ml/sweetspot/pipeline/lockfile"

// StartOption configures one plugin process.
type StartOption func(*startOptions)

type startOptions struct {
	passEnv    []string
	locked     *lockfile.Plugin
	lockedFrom string
}

// LockedTo checks an external plugin's executable against hashes (a lock
// file entry's: platform to "sha256:HEX") instead of the host's own lock
// file: a worker checks the plugin against the lock file of the client
// that started the run (lockFile, named in errors). The built-in plugin is
// not checked.
func LockedTo(lockFile string, hashes map[string]string) StartOption {
	return func(o *startOptions) {
		o.locked = &lockfile.Plugin{Hashes: hashes}
		o.lockedFrom = lockFile
	}
}

// verify checks an external plugin's executable before it runs: against
// LockedTo's entry when given, else against the host's lock file. It
// returns what to execute (see Host.verify).
func (o *startOptions) verify(h *Host, name, path string) (string, error) {
	if o.locked != nil {
		return h.checked(name, path, o.lockedFrom, o.locked)
	}
	return h.verify(name, path)
}

// PassEnv passes the named variables of the host's environment (those that
// are set) to the plugin process, beyond BaseEnv: a stage block's
// `pass_env`. Names with a host-owned prefix (HostEnvPrefixes) are ignored.
func PassEnv(names ...string) StartOption {
	return func(o *startOptions) { o.passEnv = append(o.passEnv, names...) }
}
