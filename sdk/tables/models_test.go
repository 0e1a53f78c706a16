package tables

import (
	"errors"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// A models row round-trips, its digest is the sha256 of its bytes (FIPS
// 180-2's test vector for "abc"), and a row whose bytes changed is refused
// naming its row and candidate.
func TestModelsTable(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	r := NewResult(Candidate{ID: "mlp-d1-w16-int8", Name: "mlp-d1-w16", Round: 2, Repeat: 1, Preprocess: "standardize", Quantize: "int8"})
	r.Accuracy, r.LatencyP95Ms = 0.95, 0.012
	m := NewModel(r, FormatSweetspotMLP, []byte("abc"))
	if want := "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; m.Digest != want {
		t.Fatalf("digest %s, want %s", m.Digest, want)
	}
	rec := BuildModels(mem, []Model{m})
	got, err := ReadModels(rec)
	rec.Release()
	if err != nil {
		t.Fatal(err)
	}
	g := got[0]
	if g.ID != m.ID || g.Name != "mlp-d1-w16" || g.Round != 2 || g.Repeat != 1 || string(g.Bytes) != "abc" ||
		g.Format != FormatSweetspotMLP || g.Quantize != "int8" || g.Preprocess != "standardize" ||
		g.Accuracy != 0.95 || g.LatencyP95Ms != 0.012 || !math.IsNaN(g.RMSE) || g.Artifact != "" {
		t.Errorf("read back %+v, want %+v", g, m)
	}

	bad := m
	bad.Bytes = []byte("abd")
	rec = BuildModels(mem, []Model{m, bad})
	defer rec.Release()
	_, err = ReadModels(rec)
	var ce *CellError
	if !errors.Is(err, ErrDigestMismatch) || !errors.As(err, &ce) || ce.Row != 1 || ce.Column != ColDigest {
		t.Fatalf("damaged row: %v; want a digest mismatch at row 1", err)
	}
}
