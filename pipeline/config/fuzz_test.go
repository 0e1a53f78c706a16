package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// seedDir holds FuzzLoad's seed corpus at the repository root; `-update`
// regenerates it from the golden cases. Go itself also replays anything
// the fuzzer finds, from ./testdata/fuzz/FuzzLoad in this package.
const seedDir = repoRoot + "/testdata/fuzz/FuzzLoad"

// readSeed decodes one `go test fuzz v1` file holding a single []byte.
func readSeed(b []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("go test fuzz v1\n"))
	if !ok {
		return nil, false
	}
	rest = bytes.TrimSpace(rest)
	rest, ok1 := bytes.CutPrefix(rest, []byte("[]byte("))
	rest, ok2 := bytes.CutSuffix(rest, []byte(")"))
	if !ok1 || !ok2 {
		return nil, false
	}
	s, err := strconv.Unquote(string(rest))
	if err != nil {
		return nil, false
	}
	return []byte(s), true
}

func FuzzLoad(f *testing.F) {
	entries, err := os.ReadDir(seedDir)
	if err != nil {
		f.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(seedDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		seed, ok := readSeed(b)
		if !ok {
			f.Fatalf("%s is not a go test fuzz v1 []byte file", e.Name())
		}
		f.Add(seed)
		n++
	}
	if n == 0 {
		f.Fatalf("no seeds in %s (run go test ./pipeline/config -update)", seedDir)
	}
	cat := newFakeCatalog()
	f.Fuzz(func(t *testing.T, src []byte) {
		l := newLoader(cat, nil)
		p, diags := l.load([]source{{name: "fuzz.hcl", src: src}})
		if p == nil {
			t.Fatal("nil pipeline")
		}
		checkRanges(t, p.Files, diags)
		_ = render(p.Files, diags)
		if !diags.HasErrors() {
			for _, s := range p.Stages {
				if s.Spec == nil || !s.Config.IsWhollyKnown() {
					t.Errorf("valid pipeline with an unresolved stage %s", s.Addr)
				}
			}
		}
		if out, fdiags := Format(src, "fuzz.hcl"); !fdiags.HasErrors() {
			if _, again := Format(out, "fuzz.hcl"); again.HasErrors() {
				t.Errorf("formatted output does not parse: %s", again.Error())
			}
		}
	})
}
