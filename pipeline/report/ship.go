package report

import (
	"cmp"
	"fmt"
	"math"
	"path"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// modelsPort is the output port that keeps trained models.
const modelsPort = "models"

// shipping is how to take the chosen model out of the run: the export
// command, the kept file's size and digest, and the latencies of its
// float32 and int8 forms where the run measured them.
type shipping struct {
	Command      string
	Size, Digest string
	Float, Int8  string
}

// loadShipping finds the chosen model's kept file. A run without kept
// models (or a chosen model without one) has none; a damaged models file
// is a warning, and no command is offered for it.
func (d *data) loadShipping(run *runstore.Run) *shipping {
	c := d.chosen
	if c == nil {
		return nil
	}
	var kept *tables.Model
	for _, s := range d.manifest.Stages {
		for _, f := range s.Outputs {
			if f.Port != modelsPort {
				continue
			}
			if err := run.VerifyOutput(s.Addr, f); err != nil {
				d.warnings = append(d.warnings, err.Error())
				return nil
			}
			rows, err := readModels(run.Path(f.Path))
			if err != nil {
				d.warnings = append(d.warnings, fmt.Sprintf("stage %s, port %s, file %s: %v", s.Addr, f.Port, f.Path, err))
				return nil
			}
			for i := range rows {
				r := &rows[i]
				if r.ID == c.ID && (kept == nil || r.Repeat < kept.Repeat || (r.Repeat == kept.Repeat && r.Round > kept.Round)) {
					kept = r
				}
			}
		}
	}
	if kept == nil {
		return nil
	}
	sh := &shipping{
		Command: exportCommand(d.manifest.RunID, c.ID, cmp.Or(c.Name, c.ID), kept),
		Size:    fmt.Sprintf("%d bytes", len(kept.Bytes)),
		Digest:  kept.Digest,
	}
	// The latencies of the chosen model's plain and int8 variants (the
	// latest measurement of each), where the run measured them.
	float, int8 := math.NaN(), math.NaN()
	for i := range d.trials {
		t := &d.trials[i]
		if t.label() != c.label() || !t.ok() || t.Outranked || t.PruneFraction != 0 {
			continue
		}
		switch t.Quantize {
		case "", tables.None:
			float = t.LatencyP95
		case "int8":
			int8 = t.LatencyP95
		}
	}
	ms := func(v float64) string {
		if math.IsNaN(v) {
			return "not measured"
		}
		return fmt.Sprintf("%.3g ms", v) // sub-microsecond models too
	}
	sh.Float, sh.Int8 = ms(float), ms(int8)
	return sh
}

// exportCommand is the command that writes the kept model to a file named
// after it: sweetspot's own model as it is kept (.ssm), a trainer's ONNX
// artifact as ONNX, any other artifact as kept.
func exportCommand(runID, id, name string, m *tables.Model) string {
	switch m.Format {
	case tables.FormatSweetspotMLP:
		return fmt.Sprintf("sweetspot model export %s %s -o %s.ssm", runID, id, name)
	case tables.FormatONNX:
		return fmt.Sprintf("sweetspot model export %s %s --format onnx -o %s.onnx", runID, id, name)
	case tables.FormatTar:
		return fmt.Sprintf("sweetspot model export %s %s --format artifact -o %s.tar", runID, id, name)
	}
	return fmt.Sprintf("sweetspot model export %s %s --format artifact -o %s%s", runID, id, name, cmp.Or(path.Ext(m.Artifact), ".bin"))
}

func readModels(path string) ([]tables.Model, error) {
	rd, err := runstore.OpenFiles([]string{path}, nil)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	var out []tables.Model
	for rd.Next() {
		ms, err := tables.ReadModels(rd.RecordBatch())
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, rd.Err()
}
