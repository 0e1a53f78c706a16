package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	stdhtml "html"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The headline says how to ship the chosen model: the export command, the
// kept file's size and digest, and its latency where measured; a run
// that kept no model says nothing of it.
func TestHeadlineShipsTheChosenModel(t *testing.T) {
	html, _ := render(t, fixture{decisions: true, fit: true})
	if strings.Contains(html, `id="ship"`) {
		t.Error("a run that kept no model offers an export")
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	fr := writeFixture(t, t.TempDir(), fixture{decisions: true, fit: true}, mem)
	file := []byte("the chosen model's file")
	other := tables.NewModel(tables.NewResult(tables.Candidate{ID: "mlp-d1-w4"}), tables.FormatSweetspotMLP, []byte("another"))
	chosen := tables.NewModel(tables.NewResult(tables.Candidate{ID: fr.chosen}), tables.FormatSweetspotMLP, file)
	b := tables.BuildModels(mem, []tables.Model{other, chosen})
	rel := runstore.OutputRel("evaluation.train", 1, "models")
	pw := runstore.NewPortWriter(fr.run.Path(rel), tables.ModelsSchema, mem)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	b.Release()
	n, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := fr.run.UpdateStage("evaluation.train", func(s *runstore.StageRecord) {
		s.Outputs = append(s.Outputs, runstore.OutputFile{Port: "models", Round: 1, Path: rel, Rows: n, Bytes: size, SHA256: sum})
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, fr.run, WithAllocator(mem)); err != nil {
		t.Fatal(err)
	}
	html = stdhtml.UnescapeString(buf.String())
	// The fixture's latency law, at the chosen model's size.
	lat := 2e-5 * math.Pow(float64(fr.chosenN), 0.55)
	for _, want := range []string{
		"sweetspot model export " + fr.run.ID() + " " + fr.chosen + " -o " + fr.chosen + ".ssm",
		fmt.Sprintf("model file %d bytes", len(file)),
		"sha256:" + sha256hex(file),
		fmt.Sprintf("float32 %.3g ms, int8 not measured", lat),
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the headline lacks %q", want)
		}
	}
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A trainer's artifact is exported as it was kept: ONNX as ONNX, a
// directory as its tar archive, any other file with its own extension.
func TestExportCommandOfArtifacts(t *testing.T) {
	for _, tc := range []struct {
		m    tables.Model
		want string
	}{
		{tables.Model{Format: tables.FormatSweetspotMLP}, "sweetspot model export R c1 -o net.ssm"},
		{tables.Model{Format: tables.FormatONNX, Artifact: "model.onnx"}, "sweetspot model export R c1 --format onnx -o net.onnx"},
		{tables.Model{Format: tables.FormatTar, Artifact: "saved"}, "sweetspot model export R c1 --format artifact -o net.tar"},
		{tables.Model{Format: tables.FormatFile, Artifact: "out/model.pt"}, "sweetspot model export R c1 --format artifact -o net.pt"},
		{tables.Model{Format: tables.FormatFile, Artifact: "weights"}, "sweetspot model export R c1 --format artifact -o net.bin"},
	} {
		if got := exportCommand("R", "c1", "net", &tc.m); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.m.Format, tc.m.Artifact, got, tc.want)
		}
	}
}
