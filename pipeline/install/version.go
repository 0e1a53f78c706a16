package install

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"
)

// parseConstraint parses a required_plugins version constraint; "" allows
// any version and gives nil.
func parseConstraint(s string) (version.Constraints, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	c, err := version.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("invalid version constraint %q: %w", s, err)
	}
	return c, nil
}

// allows reports whether v satisfies c (nil allows everything, even a
// version that is not one: a plugin built from a local directory may
// report "dev").
func allows(c version.Constraints, v string) bool {
	if c == nil {
		return true
	}
	parsed, err := version.NewVersion(v)
	return err == nil && c.Check(parsed)
}

// newest returns the newest of available that c allows. Strings that are
// not versions are skipped. With no constraint, pre-releases are skipped
// unless nothing else exists, as `go get` does; with one, go-version's rule
// holds: a pre-release satisfies only conditions that name a pre-release of
// the same version ("= 1.3.0-rc.1").
func newest(available []string, c version.Constraints) (string, bool) {
	type cand struct {
		raw string
		v   *version.Version
	}
	var cands []cand
	for _, s := range available {
		v, err := version.NewVersion(s)
		if err != nil {
			continue
		}
		if c != nil && !c.Check(v) {
			continue
		}
		cands = append(cands, cand{s, v})
	}
	if len(cands) == 0 {
		return "", false
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return a.v.Compare(b.v) })
	if c == nil {
		for i := len(cands) - 1; i >= 0; i-- {
			if cands[i].v.Prerelease() == "" {
				return cands[i].raw, true
			}
		}
	}
	return cands[len(cands)-1].raw, true
}

// noVersionError says that nothing available satisfies the constraint, and
// lists what is available so the user can fix one or the other.
func noVersionError(name, source, constraint string, available []string) error {
	if len(available) == 0 {
		return fmt.Errorf("plugin %s: %s offers no versions", name, source)
	}
	shown := available
	if len(shown) > 10 {
		shown = shown[len(shown)-10:]
	}
	return fmt.Errorf("plugin %s: no version of %s satisfies %q; available: %s", name, source, constraint, strings.Join(shown, ", "))
}
