package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func newRunsExportCmd(root *string) *cobra.Command {
	var format, out, port, stage string
	cmd := &cobra.Command{
		Use:   "export RUN",
		Short: "Write a run's results (every round) as Parquet, CSV or Arrow",
		Long: `Export writes the rows of one output port of a run, every round of it, as
one file that pandas, polars and DuckDB open: Parquet (zstd), CSV with a
header, or an Arrow IPC file. By default it exports the evaluation results
(the "results" port); --port and --stage pick another output. Values are
written as the run stored them: each model's name and family, and its
exact parameter count (35690000, where runs show writes 35.69M).`,
		Example: `  sweetspot runs export 20261128-231726 --format parquet -o results.parquet
  duckdb -c "select name, family, params, accuracy from 'results.parquet' order by params"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := runstore.Open(*root).Load(args[0])
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			paths, err := portFiles(run, stage, port)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			if out == "" {
				out = port + "." + map[string]string{"parquet": "parquet", "csv": "csv", "arrow": "arrow"}[format]
			}
			stream := isStream(out)
			if err := exportFiles(paths, format, out); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if !stream {
				fmt.Fprintln(cmd.OutOrStdout(), out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "parquet", "parquet, csv or arrow")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default PORT.FORMAT)")
	cmd.Flags().StringVar(&port, "port", "results", "output port to export")
	cmd.Flags().StringVar(&stage, "stage", "", "stage address (KIND.NAME) when several stages have the port")
	return cmd
}

// portFiles lists a port's files, every round, of the one stage that has it.
func portFiles(run *runstore.Run, stage, port string) ([]string, error) {
	m := run.Manifest()
	var owners []string
	var paths []string
	for _, s := range m.Stages {
		if stage != "" && s.Addr != stage {
			continue
		}
		var mine []string
		for _, f := range s.Outputs {
			if f.Port == port {
				mine = append(mine, run.Path(f.Path))
			}
		}
		if len(mine) > 0 {
			owners = append(owners, s.Addr)
			paths = mine
		}
	}
	switch len(owners) {
	case 0:
		return nil, fmt.Errorf("run %s has no output port %q%s", m.RunID, port, inStage(stage))
	case 1:
		return paths, nil
	default:
		return nil, fmt.Errorf("several stages of run %s have a port %q (%s): choose one with --stage", m.RunID, port, strings.Join(owners, ", "))
	}
}

func inStage(stage string) string {
	if stage == "" {
		return ""
	}
	return " in stage " + stage
}

// exportFiles streams the batches of paths into one file of the format
// (writeOutput: a failed export leaves no half-written file behind).
func exportFiles(paths []string, format, out string) error {
	rd, err := runstore.OpenFiles(paths, nil)
	if err != nil {
		return err
	}
	defer rd.Release()
	if err := writeOutput(out, 0o644, func(w io.Writer) error { return writeFormat(w, rd, format) }); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// batchWriter is what the Arrow CSV, IPC and Parquet writers share.
type batchWriter interface {
	Write(arrow.RecordBatch) error
	Close() error
}

// csvWriter gives the CSV writer the Close the others have.
type csvWriter struct{ *csv.Writer }

func (c csvWriter) Close() error { return c.Flush() }

func writeFormat(w io.Writer, rd array.RecordReader, format string) error {
	schema := rd.Schema()
	var bw batchWriter
	switch format {
	case "csv":
		bw = csvWriter{csv.NewWriter(w, schema, csv.WithHeader(true), csv.WithNullWriter(""))}
	case "arrow":
		fw, err := ipc.NewFileWriter(w, ipc.WithSchema(schema))
		if err != nil {
			return err
		}
		bw = fw
	case "parquet":
		props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd))
		// Hide Close: the Parquet writer would close the file before the
		// caller syncs it.
		pw, err := pqarrow.NewFileWriter(schema, struct{ io.Writer }{w}, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
		if err != nil {
			return err
		}
		bw = pw
	default:
		return fmt.Errorf("unknown format %q: use parquet, csv or arrow", format)
	}
	for rd.Next() {
		if err := bw.Write(rd.RecordBatch()); err != nil {
			bw.Close()
			return err
		}
	}
	return errors.Join(rd.Err(), bw.Close())
}
