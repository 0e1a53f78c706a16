package config

import (
	"os"
	"path/filepath"
	"testing"
)

// varFilePipeline declares a variable of each kind of type a variables
// file may have to fit.
const varFilePipeline = `variable "name" {
  type = string
}

variable "seed" {
  type    = number
  default = 1
}

variable "layers" {
  type = list(object({
    width = number
    act   = optional(string, "relu")
  }))
  default = []
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "on" {
  type    = bool
  default = true
}

variable "anything" {
  default = null
}

variable "secret" {
  type      = string
  sensitive = true
  default   = "s"
}

dataset "d" {
  generator = "blobs"
  seed      = var.seed
  target    = var.name
}
`

// FuzzVarFile reads arbitrary bytes as a -var-file: it must report
// problems with ranges inside that file, never panic, and a file that
// passes gives every variable a known value.
func FuzzVarFile(f *testing.F) {
	for _, s := range []string{
		"name = \"y\"\n",
		"name = \"y\"\nseed = 42\nlayers = [{ width = 8 }, { width = 4, act = \"tanh\" }]\ntags = { a = \"b\" }\non = false\nanything = [1, \"x\"]\nsecret = \"t\"\n",
		"name = 3\nseed = \"many\"\n",
		"name = \"y\"\nlayers = [{ widht = 8 }]\n",
		"nmae = \"y\"\n",
		"name = var.seed\n",
		"name = upper(\"y\")\n",
		"variable \"x\" {}\n",
		"name = \"y\"\nname = \"z\"\n",
		"name = \"${\n",
	} {
		f.Add([]byte(s))
	}
	cat := newFakeCatalog()
	f.Fuzz(func(t *testing.T, src []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.tfvars")
		if err := os.WriteFile(path, src, 0o644); err != nil {
			t.Fatal(err)
		}
		l := newLoader(cat, []LoadOption{WithVarFiles(path)})
		p, diags := l.load([]source{{name: "fuzz.hcl", src: []byte(varFilePipeline)}})
		if p == nil {
			t.Fatal("nil pipeline")
		}
		checkRanges(t, p.Files, diags)
		_ = render(p.Files, diags)
		if diags.HasErrors() {
			return
		}
		for _, name := range []string{"name", "seed", "layers", "tags", "on", "anything", "secret"} {
			v, ok := p.Vars[name]
			if !ok || !v.IsWhollyKnown() {
				t.Errorf("valid variables file, but var.%s = %#v", name, v)
			}
		}
	})
}
