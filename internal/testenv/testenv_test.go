package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The rule is checked in a child test process, since a skip and a failure
// both end the test that calls Missing: the child's verdict, read from the
// go test output, must be a failure when strict and a skip otherwise.
func TestMissingFailsWhenStrictAndSkipsElsewhere(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "" {
		Missing(t, "the %s tool is not installed", "frobnicate")
		return
	}
	for _, c := range []struct {
		env  []string
		want string
	}{
		{[]string{StrictVar + "=1", "CI="}, "--- FAIL"},
		{[]string{StrictVar + "=", "CI=true"}, "--- FAIL"},
		{[]string{StrictVar + "=", "CI="}, "--- SKIP"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingFailsWhenStrictAndSkipsElsewhere$", "-test.v")
		cmd.Env = append(append(os.Environ(), "TESTENV_CHILD=1"), c.env...)
		out, _ := cmd.CombinedOutput()
		if !strings.Contains(string(out), c.want) || !strings.Contains(string(out), "the frobnicate tool is not installed") {
			t.Errorf("with %v the child test printed:\n%s\nwant %q and the message", c.env, out, c.want)
		}
	}
}
