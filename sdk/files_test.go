package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// withoutFeatures is a plugin from before protocol features: its
// Describe names none.
type withoutFeatures struct{ stagepb.StageServiceClient }

func (w withoutFeatures) Describe(ctx context.Context, in *stagepb.DescribeRequest, opts ...grpc.CallOption) (*stagepb.DescribeResponse, error) {
	resp, err := w.StageServiceClient.Describe(ctx, in, opts...)
	if resp != nil {
		resp.Features = nil
	}
	return resp, err
}

// probeSet has one stage, a passthrough that notes how many input files
// were mapped in this process while it read.
func probeSet(mapped *atomic.Int64) *sdk.Set {
	set := sdk.NewSet(sdk.WithName("probe"))
	sdk.Register(set, "copy", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "input"}},
		Outputs: []sdk.Port{{Name: "output"}},
	}, func(noConfig) (sdk.Stage, error) {
		return funcStage(func(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
			r, err := in.Reader("input")
			if err != nil {
				return err
			}
			mapped.Store(stagerpc.LiveMappings())
			w, err := out.Writer("output")
			if err != nil {
				return err
			}
			for r.Next() {
				if err := w.Write(r.RecordBatch()); err != nil {
					return err
				}
			}
			return r.Err()
		}), nil
	})
	return set
}

// startProbe serves the probe set with checked allocators on both sides,
// asserted at cleanup; old makes the plugin hide its features.
func startProbe(t *testing.T, old bool) (*stagehost.Client, *atomic.Int64) {
	t.Helper()
	mapped := &atomic.Int64{}
	pluginMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	hostMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() {
		pluginMem.AssertSize(t, 0)
		hostMem.AssertSize(t, 0)
		if n := stagerpc.LiveMappings(); n != 0 {
			t.Errorf("%d input file(s) still mapped", n)
		}
	})
	rc := sdktest.Serve(t, probeSet(mapped), sdk.ServeAllocator(pluginMem))
	rpc, kill, err := sdktest.Attach(rc, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kill)
	if old {
		rpc = withoutFeatures{rpc}
	}
	return stagehost.New(rpc, stagehost.WithPluginName("probe"), stagehost.WithAllocator(hostMem)), mapped
}

// writeInputFile writes batches as the run store commits them: an Arrow
// IPC file.
func writeInputFile(t *testing.T, path string, schema *arrow.Schema, batches ...arrow.RecordBatch) stagehost.InputFile {
	t.Helper()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return stagehost.InputFile{Path: path, Size: int64(buf.Len())}
}

func numberBatches(n, rows int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for i := 0; i < n; i++ {
		b := array.NewRecordBuilder(memory.DefaultAllocator, numbersSchema)
		for j := 0; j < rows; j++ {
			b.Field(0).(*array.Int64Builder).Append(int64(i*rows + j))
			b.Field(1).(*array.StringBuilder).Append(strings.Repeat("v", j%13))
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

// TestInputsByPathAndByStream runs the same stage on the same input sent
// both ways, and to a plugin that cannot read files: the stage must see
// the same batches whichever way they came.
func TestInputsByPathAndByStream(t *testing.T) {
	if !stagerpc.FilesSupported {
		testenv.Missing(t, "%v", stagerpc.ErrFilesUnsupported)
	}
	batches := numberBatches(6, 700)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	dir := t.TempDir()
	files := []stagehost.InputFile{
		writeInputFile(t, filepath.Join(dir, "round-000.arrow"), numbersSchema, batches[:4]...),
		writeInputFile(t, filepath.Join(dir, "round-001.arrow"), numbersSchema, batches[4:]...),
	}
	want := concat(t, batches)
	defer want.Release()

	tests := []struct {
		name      string
		sendFiles bool
		old       bool
		byPath    bool // the plugin should have mapped the files
	}{
		{name: "stream", sendFiles: false},
		{name: "path", sendFiles: true, byPath: true},
		{name: "path offered to a plugin without the feature", sendFiles: true, old: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, mapped := startProbe(t, tt.old)
			in := sdktest.Table(numbersSchema, batches...)
			defer in.Release()
			req := stagehost.RunRequest{
				Kind: "copy", Stage: "copy.c",
				Inputs: map[string]array.RecordReader{"input": in},
			}
			if tt.sendFiles {
				req.InputFiles = map[string][]stagehost.InputFile{"input": files}
			}
			col := sdktest.NewCollector()
			defer col.Release()
			req.Outputs = map[string]func(arrow.RecordBatch) error{"output": col.Port("output")}
			res, err := client.Run(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if res.RowsOut["output"] != want.NumRows() {
				t.Errorf("rows out = %d, want %d", res.RowsOut["output"], want.NumRows())
			}
			got := concat(t, col.Batches["output"])
			defer got.Release()
			if !array.RecordEqual(want, got) {
				t.Error("the stage saw other data than the input")
			}
			if byPath := mapped.Load() > 0; byPath != tt.byPath {
				t.Errorf("input files mapped while the stage read: %d, want by path = %t", mapped.Load(), tt.byPath)
			}
			if n := stagerpc.LiveMappings(); n != 0 {
				t.Errorf("%d input file(s) still mapped after the run", n)
			}
		})
	}
}

// TestInputFileDamaged hands a plugin files it cannot use: the run fails
// with an error naming the stage and the port, and nothing stays mapped.
func TestInputFileDamaged(t *testing.T) {
	if !stagerpc.FilesSupported {
		testenv.Missing(t, "%v", stagerpc.ErrFilesUnsupported)
	}
	batches := numberBatches(3, 100)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	tests := []struct {
		name   string
		damage func(t *testing.T, f *stagehost.InputFile)
		want   string
	}{
		{"truncated", func(t *testing.T, f *stagehost.InputFile) {
			if err := os.Truncate(f.Path, f.Size-100); err != nil {
				t.Fatal(err)
			}
		}, "cut short"},
		{"overwritten", func(t *testing.T, f *stagehost.InputFile) {
			if err := os.WriteFile(f.Path, bytes.Repeat([]byte{0xff}, int(f.Size)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "damaged Arrow IPC file"},
		{"gone", func(t *testing.T, f *stagehost.InputFile) {
			if err := os.Remove(f.Path); err != nil {
				t.Fatal(err)
			}
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, _ := startProbe(t, false)
			f := writeInputFile(t, filepath.Join(t.TempDir(), "input.arrow"), numbersSchema, batches...)
			tt.damage(t, &f)
			in := sdktest.Table(numbersSchema, batches...)
			defer in.Release()
			_, err := client.Run(context.Background(), stagehost.RunRequest{
				Kind: "copy", Stage: "copy.c",
				Inputs:     map[string]array.RecordReader{"input": in},
				InputFiles: map[string][]stagehost.InputFile{"input": {f}},
				Outputs:    map[string]func(arrow.RecordBatch) error{},
			})
			var re *stagehost.RunError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *stagehost.RunError", err)
			}
			for _, s := range []string{"stage copy.c", `input port "input"`, f.Path, tt.want} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}

// TestInputFileCutUnderTheStage cuts a file short after the plugin mapped
// it, which no committed file should ever see: reading past its end must
// fail the run, not kill the plugin (SIGBUS).
func TestInputFileCutUnderTheStage(t *testing.T) {
	if !stagerpc.FilesSupported {
		testenv.Missing(t, "%v", stagerpc.ErrFilesUnsupported)
	}
	batches := numberBatches(4, 5000)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	f := writeInputFile(t, filepath.Join(t.TempDir(), "input.arrow"), numbersSchema, batches...)
	set := sdk.NewSet(sdk.WithName("cut"))
	sdk.Register(set, "cut", sdk.StageInfo{Inputs: []sdk.Port{{Name: "input"}}}, func(noConfig) (sdk.Stage, error) {
		return funcStage(func(ctx context.Context, in sdk.Inputs, _ sdk.Outputs) error {
			r, err := in.Reader("input")
			if err != nil {
				return err
			}
			if err := os.Truncate(f.Path, 0); err != nil {
				return err
			}
			var sum int64
			for r.Next() {
				for _, v := range r.RecordBatch().Column(0).(*array.Int64).Int64Values() {
					sum += v
				}
			}
			if err := r.Err(); err != nil {
				return err
			}
			return fmt.Errorf("read a file cut to nothing: sum %d", sum)
		}), nil
	})
	p := sdktest.Start(t, set)
	in := sdktest.Table(numbersSchema)
	defer in.Release()
	_, err := p.Run(context.Background(), stagehost.RunRequest{
		Kind: "cut", Stage: "cut.c",
		Inputs:     map[string]array.RecordReader{"input": in},
		InputFiles: map[string][]stagehost.InputFile{"input": {f}},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"stage cut.c", `input port "input"`, f.Path} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if n := stagerpc.LiveMappings(); n != 0 {
		t.Errorf("%d input file(s) still mapped", n)
	}
}
