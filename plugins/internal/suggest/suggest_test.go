package suggest

import "testing"

func TestName(t *testing.T) {
	opts := []string{"sepal_length", "sepal_width", "species", "label"}
	cases := []struct {
		name, given, want string
	}{
		{"one typo", "specis", "species"},
		{"case only", "Species", "species"},
		{"transposition", "lable", "label"},
		{"too far", "petal", ""},
		{"exact is not a suggestion of itself", "label", "label"},
		{"empty options", "x", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := opts
			if c.name == "empty options" {
				o = nil
			}
			if got := Name(c.given, o); got != c.want {
				t.Errorf("Name(%q) = %q, want %q", c.given, got, c.want)
			}
		})
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2}, {"héllo", "hello", 1},
	}
	for _, c := range cases {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
