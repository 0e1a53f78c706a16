package builtin_test

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/sweetspot-ml/sweetspot/"

// allowed are the import paths (and the trees below them) a first-party
// plugin's code may import besides the standard library: the public SDK,
// the libraries the SDK's own API hands a stage (Arrow batches, an hclog
// logger, cty values of expressions, OpenTelemetry spans), gonum, and a few
// low-level packages. The host (pipeline/, cmd/) and the SDK's wire and
// host halves are not among them: a built-in stage is written as a
// third-party one would be.
var allowed = []string{
	module + "sdk",
	module + "sdk/tables",
	module + "plugins/",
	module + "internal/ipcverify",
	"github.com/apache/arrow-go/v18/",
	"gonum.org/v1/gonum/",
	"github.com/hashicorp/go-hclog",
	"github.com/zclconf/go-cty/cty",
	"go.opentelemetry.io/otel/attribute",
	"go.opentelemetry.io/otel/codes",
	"go.opentelemetry.io/otel/propagation",
	"go.opentelemetry.io/otel/trace",
	"golang.org/x/sys/",
	"google.golang.org/protobuf/encoding/protowire",
}

// testSupport are packages for the plugins' tests only; they may import
// more (the process's tracer, the test environment), and no plugin code
// may import them.
var testSupport = map[string][]string{
	module + "plugins/internal/stagetest":   {"go.opentelemetry.io/otel"},
	module + "plugins/internal/onnx/ortrun": {module + "internal/testenv"},
}

type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Standard,Imports,Deps"}, args...)...)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func isAllowed(path string, extra []string) bool {
	if !strings.Contains(strings.Split(path, "/")[0], ".") {
		return true // the standard library
	}
	for _, a := range append(slices.Clone(allowed), extra...) {
		if path == a || (strings.HasSuffix(a, "/") && strings.HasPrefix(path, a)) || strings.HasPrefix(path, a+"/") {
			return true
		}
	}
	return false
}

// TestPluginImports keeps the first-party plugins on the author's side of
// the wall: each package's own imports are allowed ones, and nothing a
// plugin's code depends on is a test-support package or a host package.
func TestPluginImports(t *testing.T) {
	pkgs := listPackages(t, "./...")
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d plugin packages", len(pkgs))
	}
	for _, p := range pkgs {
		extra, support := testSupport[p.ImportPath]
		for _, imp := range p.Imports {
			if !isAllowed(imp, extra) {
				t.Errorf("%s imports %s, which first-party plugins may not", p.ImportPath, imp)
			}
		}
		if support {
			continue
		}
		for _, dep := range p.Deps {
			if _, ok := testSupport[dep]; ok {
				t.Errorf("%s depends on the test-support package %s", p.ImportPath, dep)
			}
			if strings.HasPrefix(dep, module+"pipeline/") || strings.HasPrefix(dep, module+"cmd/") {
				t.Errorf("%s depends on the host package %s", p.ImportPath, dep)
			}
		}
	}
}
