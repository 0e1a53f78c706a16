package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The model commands ship what a run trained. The host finds a trial's
// models row, checks the committed file against the manifest and the
// row's bytes against its digest, and moves bytes; decoding a model file
// (to predict, or to convert it to ONNX) happens in this executable
// started again in its model tool mode (builtin.ModelTool), never in the
// host process.

// modelsPort is the output port that keeps trained models.
const modelsPort = "models"

func newModelCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Export or run a model a run trained",
		Long: `Every trial of an evaluation stage keeps its model (the stage's "models"
port): the weights as measured, the preprocessing fitted on the training
rows and the input columns. An exec stage keeps each trial's artifact,
the file or directory its trainer wrote (model.onnx), as written. These
commands take one of them out of a run.

CANDIDATE is a candidate id (mlp-d1-w16-int8) or a model name
(mlp-d1-w16); without it, the run's chosen model.`,
	}
	cmd.PersistentFlags().StringVar(&root, "out", runstore.DefaultRoot, "directory that holds run directories")
	cmd.AddCommand(newModelExportCmd(&root), newModelPredictCmd(&root))
	return cmd
}

// modelSelector is how a command picks a models row.
type modelSelector struct {
	stage  string
	repeat int
}

func (s *modelSelector) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.stage, "stage", "", "stage address (KIND.NAME) when several stages keep models")
	cmd.Flags().IntVar(&s.repeat, "repeat", -1, "which repeat of the candidate (default: the first kept)")
}

func newModelExportCmd(root *string) *cobra.Command {
	var format, out string
	var sel modelSelector
	cmd := &cobra.Command{
		Use:   "export RUN [CANDIDATE]",
		Short: "Write a trained model to a file (native or ONNX)",
		Long: `Export writes one trained model of a run to a file:

  --format native  the model file as the run keeps it (sweetspot-mlp/1:
                   input columns, fitted preprocessing, weights), byte for
                   byte; 'sweetspot model predict' and the run store read it
  --format onnx    a standard ONNX model with the preprocessing in its graph
                   (input "features", float [N, features]; outputs "class"
                   and "probabilities", or "value"), for ONNX Runtime; a
                   trainer's ONNX artifact (exec), byte for byte
  --format artifact  the bytes as the run keeps them, whatever they are: a
                   trainer's artifact file as written, a directory as a tar
                   archive

The committed models file is checked against the run's manifest and the
model's bytes against their digest before anything is written; the file
is written whole or not at all. It prints the path, size and digest.`,
		Example: `  sweetspot model export 20261205-133449 -o model.ssm              # the chosen model
  sweetspot model export 20261205-133449 mlp-d1-w16 --format onnx -o model.onnx
  sweetspot model export 20261205-133449 mlp-d1-w16-int8 --repeat 1 -o int8.ssm
  sweetspot model export 20261206-101500 convnet-c4 --format onnx -o convnet.onnx   # an exec trial's model.onnx`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(exportFormats, format) {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--format %q: want native, onnx or artifact", format)}
			}
			m, err := findModel(*root, args, sel)
			if err != nil {
				return err
			}
			data, err := exportBytes(m, format)
			if err != nil {
				return err
			}
			if out == "" {
				out = m.ID + exportExt(m, format)
			}
			stream := isStream(out)
			if err := writeOutputBytes(out, 0o644, data); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			written := m.Format
			if format == "onnx" {
				written = tables.FormatONNX
			}
			// The line goes to stderr when the model went to a stream such
			// as stdout.
			say := cmd.OutOrStdout()
			if stream {
				say = cmd.ErrOrStderr()
			}
			fmt.Fprintf(say, "%s: %s repeat %d (%s), %d bytes, %s\n", out, m.ID, m.Repeat, written, len(data), tables.Digest(data))
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "native", "native, onnx or artifact")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default CANDIDATE.ssm, CANDIDATE.onnx, or the artifact's extension)")
	sel.flags(cmd)
	return cmd
}

func newModelPredictCmd(root *string) *cobra.Command {
	var input, inputFormat, output, format string
	var sel modelSelector
	cmd := &cobra.Command{
		Use:   "predict RUN [CANDIDATE] --input FILE",
		Short: "Predict with a trained model, preprocessing included",
		Long: `Predict runs one trained model of a run on the rows of a table file (CSV,
TSV, Parquet or Arrow IPC): it takes the model's input columns by name
(other columns, such as the target, are ignored), applies the
preprocessing fitted in training, and writes one row per input row: row,
prediction (the class's name, or the predicted value) and, for a
classifier, the class index. CSV goes to stdout unless --output names a
file (written whole or not at all); --format arrow writes an Arrow IPC
file.

A file that lacks one of the model's columns, or holds one that is not
numbers, is refused with the file, the columns and what the model
expects; a value that is missing or not a number, with its line.`,
		Example: `  sweetspot model predict 20261205-133449 --input new.csv            # the chosen model, CSV to stdout
  sweetspot model predict 20261205-133449 mlp-d1-w16-int8 --input new.parquet -o pred.arrow`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if input == "" {
				return &exitError{code: exitInvalid, err: errors.New("predict needs --input FILE (CSV, TSV, Parquet or Arrow IPC)")}
			}
			if format == "" {
				format = builtin.PredictCSV
				if ext := strings.ToLower(filepath.Ext(output)); ext == ".arrow" || ext == ".arrows" || ext == ".ipc" || ext == ".feather" {
					format = builtin.PredictArrow
				}
			}
			if format != builtin.PredictCSV && format != builtin.PredictArrow {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--format %q: want csv or arrow", format)}
			}
			abs, err := filepath.Abs(input)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			if _, err := os.Stat(abs); err != nil {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--input: %w", err)}
			}
			m, err := findModel(*root, args, sel)
			if err != nil {
				return err
			}
			if m.Format != tables.FormatSweetspotMLP && m.Artifact != "" {
				hint := "export it with --format artifact and run it with the framework that made it"
				if m.Format == tables.FormatONNX {
					hint = fmt.Sprintf("export it with 'sweetspot model export %s %s --format onnx' and run it in ONNX Runtime", args[0], m.ID)
				}
				return &exitError{code: exitInvalid, err: fmt.Errorf("%s; %s", foreignModel(m), hint)}
			}
			toolArgs := []string{"predict", "--input", abs, "--format", format}
			if inputFormat != "" {
				toolArgs = append(toolArgs, "--input-format", inputFormat)
			}
			var buf bytes.Buffer
			if err := runModelTool(m, toolArgs, &buf); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if output == "" {
				_, err := cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			if err := writeOutputBytes(output, 0o644, buf.Bytes()); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&input, "input", "", "table file of the rows to predict (CSV, TSV, Parquet, Arrow IPC)")
	cmd.Flags().StringVar(&inputFormat, "input-format", "", "csv, tsv, parquet or arrow when the input's name does not say")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default stdout)")
	cmd.Flags().StringVar(&format, "format", "", "csv or arrow (default: from --output's extension, else csv)")
	sel.flags(cmd)
	return cmd
}

// findModel loads the run args[0] and picks the models row args[1] (or
// the chosen model) names.
func findModel(root string, args []string, sel modelSelector) (tables.Model, error) {
	run, err := runstore.Open(root).Load(args[0])
	if err != nil {
		return tables.Model{}, &exitError{code: exitInvalid, err: err}
	}
	models, err := readModels(run, sel.stage)
	if err != nil {
		return tables.Model{}, err
	}
	want := ""
	if len(args) > 1 {
		want = args[1]
	}
	mf := run.Manifest()
	return pickModel(&mf, models, want, sel.repeat)
}

// readModels reads every models row of the run (of one stage when given),
// each committed file checked against the manifest before it is read and
// each row's bytes against its digest.
func readModels(run *runstore.Run, stage string) ([]tables.Model, error) {
	m := run.Manifest()
	var out []tables.Model
	found := false
	for _, s := range m.Stages {
		if stage != "" && s.Addr != stage {
			continue
		}
		for _, f := range s.Outputs {
			if f.Port != modelsPort {
				continue
			}
			found = true
			if err := run.VerifyOutput(s.Addr, f); err != nil {
				return nil, &exitError{code: exitFailed, err: err}
			}
			rows, err := readModelsFile(run.Path(f.Path))
			if err != nil {
				return nil, &exitError{code: exitFailed, err: fmt.Errorf("run %s, stage %s, port %s, round %d: file %s: %w", m.RunID, s.Addr, f.Port, f.Round, f.Path, err)}
			}
			out = append(out, rows...)
		}
	}
	if !found {
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("run %s keeps no models%s: an evaluation stage keeps its trials' models, and an exec stage its trials' artifacts (its artifact attribute), in a %q port", m.RunID, inStage(stage), modelsPort)}
	}
	return out, nil
}

func readModelsFile(path string) ([]tables.Model, error) {
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

// pickModel chooses the row want names: a candidate id, else a model name
// (its base variant, whose id is the name, first); "" is the run's chosen
// model. Among a candidate's rows, the repeat asked for (else the first
// repeat) of its latest round.
func pickModel(m *runstore.Manifest, models []tables.Model, want string, repeat int) (tables.Model, error) {
	if want == "" {
		if m.Decision == nil || m.Decision.Chosen == "" {
			return tables.Model{}, &exitError{code: exitInvalid, err: fmt.Errorf("run %s chose no model; name one of its models: %s", m.RunID, modelNames(models))}
		}
		want = m.Decision.Chosen
	}
	var match []tables.Model
	for _, r := range models {
		if r.ID == want {
			match = append(match, r)
		}
	}
	if len(match) == 0 {
		for _, r := range models {
			if r.Name == want {
				match = append(match, r)
			}
		}
	}
	if len(match) == 0 {
		return tables.Model{}, &exitError{code: exitInvalid, err: fmt.Errorf("run %s keeps no model %q; its models: %s", m.RunID, want, modelNames(models))}
	}
	if repeat >= 0 {
		match = slices.DeleteFunc(match, func(r tables.Model) bool { return int(r.Repeat) != repeat })
		if len(match) == 0 {
			return tables.Model{}, &exitError{code: exitInvalid, err: fmt.Errorf("run %s keeps no repeat %d of %q", m.RunID, repeat, want)}
		}
	}
	best := slices.MinFunc(match, func(a, b tables.Model) int {
		base := func(r tables.Model) int {
			if r.ID == r.Name {
				return 0
			}
			return 1
		}
		return cmp.Or(cmp.Compare(base(a), base(b)), cmp.Compare(a.Repeat, b.Repeat), cmp.Compare(b.Round, a.Round))
	})
	return best, nil
}

// modelNames lists the candidate ids of the kept models, for messages.
func modelNames(models []tables.Model) string {
	var ids []string
	for _, r := range models {
		if !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "none"
	}
	if len(ids) > 20 {
		return strings.Join(ids[:20], ", ") + fmt.Sprintf(" and %d more", len(ids)-20)
	}
	return strings.Join(ids, ", ")
}

// exportFormats are export's --format values.
var exportFormats = []string{"native", "onnx", "artifact"}

// exportBytes is what export writes of m in format: the kept bytes (a
// native model, a trainer's ONNX file, any artifact as kept), or a native
// model converted to ONNX by the model tool. The kept bytes are checked
// against their digest once more just before they are written.
func exportBytes(m tables.Model, format string) ([]byte, error) {
	foreign := m.Format != tables.FormatSweetspotMLP
	switch {
	case format == "artifact", format == "native" && !foreign, format == "onnx" && m.Format == tables.FormatONNX:
		if err := m.Check(); err != nil {
			return nil, &exitError{code: exitFailed, err: fmt.Errorf("model %s repeat %d: %w", m.ID, m.Repeat, err)}
		}
		return m.Bytes, nil
	case format == "native":
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("%s; export it as it is with --format %s", foreignModel(m), cmp.Or(map[string]string{tables.FormatONNX: "onnx"}[m.Format], "artifact"))}
	case foreign:
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("model %s is a trainer's artifact in format %s (%s), not ONNX: sweetspot does not convert it; export it as it is with --format artifact", m.ID, m.Format, m.Artifact)}
	}
	var buf bytes.Buffer
	if err := runModelTool(m, []string{"onnx", "--version", version}, &buf); err != nil {
		return nil, &exitError{code: exitFailed, err: fmt.Errorf("export %s as ONNX: %w", m.ID, err)}
	}
	return buf.Bytes(), nil
}

// exportExt is the default output file's extension.
func exportExt(m tables.Model, format string) string {
	switch {
	case format == "onnx" || m.Format == tables.FormatONNX:
		return ".onnx"
	case m.Format == tables.FormatSweetspotMLP:
		return ".ssm"
	case m.Format == tables.FormatTar:
		return ".tar"
	}
	return cmp.Or(path.Ext(m.Artifact), ".bin")
}

// foreignModel says that m is a trainer's artifact, which sweetspot does
// not run.
func foreignModel(m tables.Model) string {
	return fmt.Sprintf("model %s is a trainer's artifact (%s, format %s): sweetspot runs only its own models (%s), not a foreign one natively",
		m.ID, m.Artifact, m.Format, tables.FormatSweetspotMLP)
}

// runModelTool starts this executable in its model tool mode with the
// model's bytes on stdin and its output into w. The bytes were checked
// against their digest on the way out of the run store.
func runModelTool(m tables.Model, args []string, w io.Writer) error {
	if m.Format != tables.FormatSweetspotMLP {
		if m.Artifact != "" {
			return errors.New(foreignModel(m))
		}
		return fmt.Errorf("model %s is in format %q; this sweetspot reads %s", m.ID, m.Format, tables.FormatSweetspotMLP)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c := exec.Command(self, append([]string{builtin.ModelToolArg}, args...)...)
	c.Stdin = bytes.NewReader(m.Bytes)
	c.Stdout = w
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("model tool: %w", err)
	}
	return nil
}
