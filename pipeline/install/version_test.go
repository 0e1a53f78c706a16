package install

import (
	"strings"
	"testing"
)

func TestNewest(t *testing.T) {
	available := []string{"v0.9.0", "v1.0.0", "v1.1.5", "v1.2.0", "v1.3.0-rc.1", "v2.0.0", "not-a-version"}
	tests := []struct {
		constraint string
		want       string // "" for none
	}{
		{"", "v2.0.0"},
		{">= 1.2, < 2", "v1.2.0"},
		{"~> 1.1", "v1.2.0"}, // >= 1.1, < 2.0
		{"~> 1.1.0", "v1.1.5"},
		{"< 1", "v0.9.0"},
		{"= 1.0.0", "v1.0.0"},
		{"!= 2.0.0, >= 1.1", "v1.2.0"},
		{">= 3", ""},
		// go-version admits a pre-release only when every condition names a
		// pre-release of the same version; otherwise none ever satisfies.
		{"= 1.3.0-rc.1", "v1.3.0-rc.1"},
		{">= 1.3.0-rc.1, < 2", ""},
		{"> 1.2.0, < 2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.constraint, func(t *testing.T) {
			c, err := parseConstraint(tt.constraint)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := newest(available, c)
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("newest(%q) = %q, %v; want %q", tt.constraint, got, ok, tt.want)
			}
		})
	}
}

func TestNewestWithoutConstraintPrefersReleases(t *testing.T) {
	if got, _ := newest([]string{"1.0.0", "1.1.0-beta"}, nil); got != "1.0.0" {
		t.Errorf("got %q, want the release", got)
	}
	// With only pre-releases, the newest one is all there is.
	if got, _ := newest([]string{"1.0.0-a", "1.1.0-beta"}, nil); got != "1.1.0-beta" {
		t.Errorf("got %q, want the newest pre-release", got)
	}
}

func TestAllows(t *testing.T) {
	c, _ := parseConstraint(">= 0.1, < 1")
	for v, want := range map[string]bool{"0.1.0": true, "0.9.9": true, "1.0.0": false, "dev": false, "unversioned": false} {
		if got := allows(c, v); got != want {
			t.Errorf("allows(%q) = %v, want %v", v, got, want)
		}
	}
	if !allows(nil, "dev") {
		t.Error("no constraint must allow any version")
	}
	if _, err := parseConstraint(">= x"); err == nil {
		t.Error("parseConstraint accepted a malformed constraint")
	}
}

func TestNoVersionError(t *testing.T) {
	err := noVersionError("p", "example.com/p", ">= 9", []string{"v1.0.0", "v1.1.0"})
	for _, want := range []string{`no version of example.com/p satisfies ">= 9"`, "v1.0.0, v1.1.0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func TestSortVersions(t *testing.T) {
	vs := []string{"1.10.0", "x", "1.2.0", "1.9.0-rc.1", "1.9.0"}
	sortVersions(vs)
	want := "x 1.2.0 1.9.0-rc.1 1.9.0 1.10.0"
	if got := strings.Join(vs, " "); got != want {
		t.Errorf("sorted = %s, want %s", got, want)
	}
}
