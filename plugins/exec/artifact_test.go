package exec

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// runModels runs the stage in process and returns its results and its
// models rows.
func runModels(t *testing.T, cfg Config, in stagetest.Inputs) ([]tables.Result, []tables.Model) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, context.Background(), Info(), st, in)
	if err != nil {
		t.Fatal(err)
	}
	var rs []tables.Result
	for _, b := range out.Batches(OutputPort) {
		got, err := tables.ReadResults(b)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, got...)
	}
	var ms []tables.Model
	for _, b := range out.Batches(ModelsPort) {
		got, err := tables.ReadModels(b)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, got...)
	}
	return rs, ms
}

// sha is the digest of b as sha256sum(1) prints it, with the prefix.
func sha(t *testing.T, b []byte) string {
	t.Helper()
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestArtifactFile(t *testing.T) {
	mem := checked(t)
	a, b := cand(4, 3, 1, 8), cand(4, 3, 1, 16)
	// Bytes of every value, NUL and newline included, and a trial whose
	// final metrics name another file than the stage's attribute.
	script := `printf 'ONNX\000\001\n\377' > model.onnx
mkdir -p out && printf 'weights of %s' "$SWEETSPOT_CANDIDATE_ID" > out/w.bin
case "$SWEETSPOT_WIDTH" in
16) echo '{"accuracy": 0.5, "artifact": "out/w.bin"}' ;;
*)  echo '{"accuracy": 0.75}' ;;
esac`
	rs, ms := runModels(t, Config{Command: sh(script), Artifact: "model.onnx"},
		stagetest.Inputs{InputPort: candidates(t, mem, a, b)})
	for _, r := range rs {
		if r.Status != tables.StatusOK {
			t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	type row struct{ ID, Format, Artifact, Digest, Bytes string }
	var got []row
	for _, m := range ms {
		got = append(got, row{m.ID, m.Format, m.Artifact, m.Digest, string(m.Bytes)})
	}
	onnx, w := []byte("ONNX\x00\x01\n\xff"), []byte("weights of "+b.ID)
	want := []row{
		{a.ID, tables.FormatONNX, "model.onnx", sha(t, onnx), string(onnx)},
		{b.ID, tables.FormatFile, "out/w.bin", sha(t, w), string(w)},
	}
	less := func(x, y row) bool { return x.ID < y.ID }
	if diff := cmp.Diff(want, got, cmpSort(less)); diff != "" {
		t.Errorf("models rows (-want +got):\n%s", diff)
	}
	for _, m := range ms {
		if m.Accuracy != map[string]float64{a.ID: 0.75, b.ID: 0.5}[m.ID] || m.Name != m.ID {
			t.Errorf("%s: accuracy %g name %q, want the trial's", m.ID, m.Accuracy, m.Name)
		}
	}
	if a := attrs(trialSpan(t, a.ID)); a["artifact_digest"] != sha(t, onnx) || a["artifact_format"] != "onnx" {
		t.Errorf("span attributes %v", a)
	}
}

func cmpSort[T any](less func(a, b T) bool) cmp.Option {
	return cmp.Transformer("sort", func(in []T) []T {
		out := append([]T(nil), in...)
		for i := range out {
			for j := i + 1; j < len(out); j++ {
				if less(out[j], out[i]) {
					out[i], out[j] = out[j], out[i]
				}
			}
		}
		return out
	})
}

func TestArtifactDirectory(t *testing.T) {
	mem := checked(t)
	a, b := cand(4, 3, 1, 8), cand(4, 3, 1, 16)
	// The same files in another order of creation, with other times: the
	// same archive. A symlink to a file inside the working directory
	// keeps that file's bytes.
	script := `mkdir -p saved/sub
echo shared > shared.txt
if [ "$SWEETSPOT_WIDTH" = 8 ]; then
  printf 'alpha' > saved/a.txt; printf 'beta' > saved/sub/b.bin; touch -d 2001-01-01 saved/a.txt
else
  printf 'beta' > saved/sub/b.bin; sleep 0.01; printf 'alpha' > saved/a.txt
fi
ln -s ../shared.txt saved/link.txt
echo '{"accuracy": 0.5}'`
	rs, ms := runModels(t, Config{Command: sh(script), Artifact: "saved/"},
		stagetest.Inputs{InputPort: candidates(t, mem, a, b)})
	if len(rs) != 2 || len(ms) != 2 {
		t.Fatalf("%d results, %d models; want 2 each", len(rs), len(ms))
	}
	if ms[0].Digest != ms[1].Digest {
		t.Errorf("the same files gave two digests: %s and %s", ms[0].Digest, ms[1].Digest)
	}
	m := ms[0]
	if m.Format != tables.FormatTar || m.Artifact != "saved" {
		t.Errorf("format %q artifact %q, want tar and saved", m.Format, m.Artifact)
	}
	// Read back with archive/tar, and with tar(1), which we did not write.
	got := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(m.Bytes))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		got[h.Name] = string(body)
	}
	want := map[string]string{"a.txt": "alpha", "link.txt": "shared\n", "sub/": "", "sub/b.bin": "beta"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
	dir := t.TempDir()
	cmd := exec.Command("tar", "-x", "-C", dir)
	cmd.Stdin = bytes.NewReader(m.Bytes)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "sub", "b.bin")); err != nil || string(b) != "beta" {
		t.Errorf("tar(1) extracted sub/b.bin as %q (%v)", b, err)
	}
}

func TestArtifactErrors(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret.onnx")
	if err := os.WriteFile(outside, []byte("not yours"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, artifact, script, want string
	}{
		{"missing", "model.onnx", `echo '{"accuracy": 0.5}'`, `artifact "model.onnx": no such file or directory in the trial's working directory`},
		{"named missing", "", `echo '{"accuracy": 0.5, "artifact": "net.pt"}'`, `artifact "net.pt": no such file`},
		{"dot dot", "", `echo '{"accuracy": 0.5, "artifact": "../x.onnx"}'`, `artifact "../x.onnx": the path leaves the trial's working directory`},
		{"absolute", "", `echo '{"accuracy": 0.5, "artifact": "` + outside + `"}'`, `the path is absolute`},
		{"symlink out", "model.onnx", `ln -s ` + outside + ` model.onnx; echo '{"accuracy": 0.5}'`, `a symlink leads out of the trial's working directory`},
		{"symlink out in a directory", "saved", `mkdir saved; ln -s ` + outside + ` saved/w.bin; echo '{"accuracy": 0.5}'`, `artifact "saved": w.bin: a symlink leads out`},
		{"fifo", "model.onnx", `mkfifo model.onnx; echo '{"accuracy": 0.5}'`, `not a regular file or directory`},
		{"not a string", "", `echo '{"accuracy": 0.5, "artifact": 3}'`, `artifact is 3, want a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			c := cand(4, 3, 1, 8)
			rs, ms := runModels(t, Config{Command: sh(tc.script), Artifact: tc.artifact},
				stagetest.Inputs{InputPort: candidates(t, mem, c)})
			if len(ms) != 0 {
				t.Errorf("%d models rows, want none", len(ms))
			}
			r := rs[0]
			if r.Status != tables.StatusFailed || !strings.Contains(r.Error, tc.want) {
				t.Fatalf("status %s, error %q; want failed with %q", r.Status, r.Error, tc.want)
			}
			if !strings.Contains(tc.want, "want a string") && !strings.Contains(r.Error, "stage exec, trial "+c.ID+": artifact ") {
				t.Errorf("error %q does not name the stage and the trial", r.Error)
			}
		})
	}
}

func TestArtifactConfig(t *testing.T) {
	for _, a := range []string{"../model.onnx", "/tmp/model.onnx", ".", "a/../../b"} {
		_, err := New(Config{Command: sh("true"), Artifact: a})
		if err == nil || !strings.Contains(err.Error(), "Invalid artifact path") {
			t.Errorf("artifact %q: error %v, want an invalid artifact path", a, err)
		}
	}
	if _, err := New(Config{Command: sh("true"), Artifact: "out/../model.onnx"}); err != nil {
		t.Errorf("a path that stays inside: %v", err)
	}
}

// A pruned or failed trial keeps no artifact, and a resumed stage writes
// the journalled models row of a finished trial again, without running
// it.
func TestArtifactResume(t *testing.T) {
	mem := checked(t)
	done, todo, broken := cand(4, 3, 1, 8), cand(4, 3, 1, 16), cand(4, 3, 1, 32)
	doneResult := failedResult(done)
	doneResult.Status, doneResult.Accuracy = tables.StatusOK, 0.9
	journalled := tables.NewModel(doneResult, tables.FormatONNX, []byte("journalled"))
	journalled.Artifact = "model.onnx"
	jr := tables.BuildResults(mem, []tables.Result{doneResult})
	jm := tables.BuildModels(mem, []tables.Model{journalled})
	t.Cleanup(jr.Release)
	t.Cleanup(jm.Release)
	script := `[ "$SWEETSPOT_WIDTH" = 8 ] && exit 3
printf "new $SWEETSPOT_WIDTH" > model.onnx
[ "$SWEETSPOT_WIDTH" = 32 ] && exit 1
echo '{"accuracy": 0.5}'`
	rs, ms := runModels(t, Config{Command: sh(script), Artifact: "model.onnx"}, stagetest.Inputs{
		InputPort:  candidates(t, mem, done, todo, broken),
		ResumePort: []arrow.RecordBatch{jr}, ResumeModelsPort: []arrow.RecordBatch{jm},
	})
	status := map[string]string{}
	for _, r := range rs {
		status[r.ID] = r.Status
	}
	if diff := cmp.Diff(map[string]string{done.ID: "ok", todo.ID: "ok", broken.ID: "failed"}, status); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	kept := map[string]string{}
	for _, m := range ms {
		kept[m.ID] = string(m.Bytes)
	}
	if diff := cmp.Diff(map[string]string{done.ID: "journalled", todo.ID: "new 16"}, kept); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
}
