package runner

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Engine executes a loaded pipeline into a run directory. *Runner is the
// local engine; pipeline/temporal's Runner spreads the same pipeline over
// Temporal workers. Both record the same manifest, so everything that
// reads runs works with either.
type Engine interface {
	Execute(ctx context.Context, run *runstore.Run, p *config.Pipeline, g *graph.Graph) error
}

var _ Engine = (*Runner)(nil)

// StageExecutor runs one execution of a stage: it reads the task's input
// files from the run directory, runs the stage's plugin on them and writes
// its output files there. HostExecutor, which Temporal workers use, starts
// a process for the task; the local runner runs the task (RunTask) in the
// process it started, or kept, for the stage.
type StageExecutor interface {
	RunStage(ctx context.Context, task *StageTask, progress func(sdk.Progress)) (*StageOutcome, error)
}

// StageTask is one execution of one stage, complete in itself: a process
// that can reach the run directory can run it.
type StageTask struct {
	RunID string
	// RunDir is the run directory as this process reaches it.
	RunDir string
	Stage  string // address
	Kind   string
	Plugin string
	Round  int
	Config cty.Value
	// Inputs are the files of each connected input port, in the order the
	// ports are announced to the plugin.
	Inputs []PortFiles
	// Outputs are the stage's output ports; a declared Arrow schema is the
	// schema of a port that stays empty.
	Outputs []describe.PortDescription
	// OutputDir is where the output files go, relative to RunDir; ""
	// means the stage's usual place for the round (runstore.OutputRel).
	OutputDir string
	// Resume is the stage kind's journal contract; with Journal set, its
	// output port is journalled batch by batch, and with FromJournal set
	// the rows journalled by an interrupted execution are handed back on
	// its input port.
	Resume      *sdk.Resume
	Journal     bool
	FromJournal bool
	// VerifyInputs checks each input file against its recorded sha256
	// before the plugin reads it: files that crossed machines are checked,
	// files this process wrote a moment ago need not be.
	VerifyInputs bool
	// Timeout bounds the plugin's run; 0 means none.
	Timeout time.Duration
	// PassEnv names the variables of this process's environment the
	// plugin process gets (the stage's pass_env).
	PassEnv []string
	// PluginHashes, when set, is the lock file entry (platform to
	// "sha256:HEX") the plugin's executable must match before it starts,
	// from LockFile: a worker checks the plugin against the lock file of
	// the client that started the run.
	PluginHashes map[string]string
	LockFile     string
	// MemoryLimit bounds the resident memory of the plugin process and its
	// children while the task runs, in bytes; 0 means none.
	MemoryLimit int64
}

// PortFiles is one input port and the files that feed it.
type PortFiles = engine.PortFiles

// StageOutcome is a finished execution.
type StageOutcome struct {
	// Files are the output ports' files, in the order of Outputs, with
	// paths relative to the run directory.
	Files []runstore.OutputFile
	// Pid is the plugin process that ran it.
	Pid int
	// Note says what was out of the ordinary (a resumed journal).
	Note string
	// PeakRSS is the plugin process's peak resident memory, in bytes, by
	// the end of the task (see pluginhost.Client.PeakRSS).
	PeakRSS int64
}

// outputPath is where a task writes port, relative to the run directory.
func (t *StageTask) outputPath(port string) string {
	if t.OutputDir == "" {
		return runstore.OutputRel(t.Stage, t.Round, port)
	}
	return filepath.Join(t.OutputDir, port+".arrow")
}

// RunTask runs task in an already started and configured plugin process.
// Outputs are committed only when the plugin succeeds.
func RunTask(ctx context.Context, client *pluginhost.Client, task *StageTask, mem memory.Allocator, log hclog.Logger, progress func(sdk.Progress)) (*StageOutcome, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	stageErr := func(op string, err error) error { return &sdk.StageError{Stage: task.Stage, Op: op, Err: err} }

	inputs := map[string]array.RecordReader{}
	defer func() {
		for _, r := range inputs {
			r.Release()
		}
	}()
	var order []string
	// The same files by path, which a plugin that can map them reads
	// without the stream: they are committed, so nobody changes them.
	files := map[string][]pluginhost.InputFile{}
	for _, in := range task.Inputs {
		paths := make([]string, len(in.Files))
		for i, f := range in.Files {
			paths[i] = filepath.Join(task.RunDir, f.Path)
			files[in.Port] = append(files[in.Port], pluginhost.InputFile{Path: paths[i], Size: f.Bytes})
			if task.VerifyInputs {
				if err := VerifyFile(paths[i], f); err != nil {
					return nil, stageErr("open input "+in.Port, err)
				}
			}
		}
		rd, err := runstore.OpenFiles(paths, mem)
		if err != nil {
			return nil, stageErr("open input "+in.Port, err)
		}
		inputs[in.Port] = rd
		order = append(order, in.Port)
	}

	// What an interrupted attempt journalled, handed back to the stage. Read
	// before the output's journal opens: that one replaces it.
	note := ""
	carried := map[string]int64{}
	for _, rs := range task.Resume.Ports() {
		if !task.FromJournal {
			break
		}
		journalled, n, report, err := readJournal(filepath.Join(task.RunDir, task.outputPath(rs.Output)), mem)
		if err != nil {
			return nil, stageErr("read journal", err)
		}
		pnote := ""
		if journalled != nil {
			inputs[rs.Input] = journalled
			order = append(order, rs.Input)
			carried[rs.Output] = n
			pnote = fmt.Sprintf("resumed with %d journalled row(s) of port %s", n, rs.Output)
			log.Info("resuming stage from its journal", "stage", task.Stage, "round", task.Round, "port", rs.Output, "rows", n)
		}
		if report.Damaged() || (report != nil && !report.Checked) {
			// Said in the log now and in the manifest (the execution's
			// note) for good: what was kept, what runs again.
			if pnote == "" {
				pnote = fmt.Sprintf("resumed with no journalled row of port %s", rs.Output)
			}
			pnote += "; " + report.String()
			msg := "the journal of an interrupted stage is damaged"
			if !report.Checked {
				msg = "the journal of an interrupted stage has no checksums"
			}
			log.Warn(msg, "stage", task.Stage, "round", task.Round, "journal", report.String())
		}
		if pnote != "" && note != "" {
			note += "; "
		}
		note += pnote
	}

	// Outputs, each to its own file committed only when the stage succeeds.
	writers := map[string]*runstore.PortWriter{}
	sinks := map[string]func(arrow.RecordBatch) error{}
	defer func() {
		for _, w := range writers {
			w.Abort()
		}
	}()
	for _, port := range task.Outputs {
		var declared *arrow.Schema
		if len(port.ArrowSchema) > 0 {
			s, err := port.PortSchema()
			if err != nil {
				return nil, stageErr("read declared schema of port "+port.Name, err)
			}
			declared = s
		}
		w := runstore.NewPortWriter(filepath.Join(task.RunDir, task.outputPath(port.Name)), declared, mem)
		for _, rs := range task.Resume.Ports() {
			if task.Journal && rs.Output == port.Name {
				w.Journal(carried[port.Name])
			}
		}
		writers[port.Name] = w
		sinks[port.Name] = w.Write
	}

	runCtx := ctx
	if task.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, task.Timeout, &TimeoutError{Stage: task.Stage, Timeout: task.Timeout})
		defer cancel()
	}
	_, err := client.Run(runCtx, pluginhost.RunRequest{
		Kind:       task.Kind,
		Stage:      task.Stage,
		RunID:      task.RunID,
		WorkDir:    filepath.Join(task.RunDir, "work", task.Stage),
		Round:      task.Round,
		Config:     task.Config,
		Inputs:     inputs,
		InputOrder: order,
		InputFiles: files,
		Outputs:    sinks,
		OnProgress: progress,
	}, pluginhost.WithMemoryLimit(task.MemoryLimit))
	if err != nil {
		var mle *pluginhost.MemoryLimitError
		var soe *pluginhost.StdoutError
		if errors.As(err, &mle) || errors.As(err, &soe) {
			// They name the stage and say what the host did.
			return nil, err
		}
		if cause := context.Cause(runCtx); cause != nil && runCtx.Err() != nil && ctx.Err() == nil {
			// The stage's own timeout fired: say so rather than "canceled".
			client.Kill()
			return nil, stageErr("run", fmt.Errorf("%w (plugin %s was stopped)", cause, task.Plugin))
		}
		return nil, stageErr("run", err)
	}

	out := &StageOutcome{Pid: client.Pid(), Note: note, PeakRSS: client.PeakRSS()}
	for _, port := range task.Outputs {
		rows, size, sum, err := writers[port.Name].Commit()
		if err != nil {
			return nil, stageErr("write output "+port.Name, err)
		}
		out.Files = append(out.Files, runstore.OutputFile{Port: port.Name, Round: task.Round, Path: task.outputPath(port.Name), Rows: rows, Bytes: size, SHA256: sum, BLAKE3: writers[port.Name].BLAKE3()})
	}
	return out, nil
}

// TimeoutError is a stage that ran past its timeout.
type TimeoutError struct {
	Stage   string
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("stage %s exceeded its timeout of %s", e.Stage, e.Timeout)
}

// VerifyFile checks that the file at path is the one f describes
// (runstore.VerifyFile: its size and digest, hashed once per process).
func VerifyFile(path string, f runstore.OutputFile) error {
	err := runstore.VerifyFile(path, f)
	var mm *runstore.FileMismatchError
	if errors.As(err, &mm) {
		if mm.Algorithm == "" {
			alg, want := "sha256", f.SHA256
			if f.BLAKE3 != "" {
				alg, want = "blake3", f.BLAKE3
			}
			return fmt.Errorf("%s: %d bytes, but its producer recorded %s (the %s of %d bytes): the file changed or was damaged after it was written", path, mm.Size, want, alg, mm.WantSize)
		}
		return fmt.Errorf("%s: %s %s, but its producer recorded %s: the file changed or was damaged after it was written", path, mm.Algorithm, mm.Got, mm.Want)
	}
	return err
}

// readJournal returns, as a reader, the rows journalled beside portFile
// before an interruption that can be trusted (nil when there are none),
// and the journal's report: what was kept and what was dropped.
func readJournal(portFile string, mem memory.Allocator) (array.RecordReader, int64, *runstore.JournalReport, error) {
	schema, batches, report, err := runstore.ReadJournalReport(runstore.JournalPath(portFile), mem)
	if err != nil || len(batches) == 0 {
		return nil, 0, report, err
	}
	var rows int64
	for _, b := range batches {
		rows += b.NumRows()
	}
	rd, err := array.NewRecordReader(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	if err != nil {
		return nil, 0, report, err
	}
	return rd, rows, report, nil
}

// HostExecutor starts a plugin process for each task, has it check the
// config, runs the task and stops the process: what a worker that serves
// many runs does.
type HostExecutor struct {
	Launcher Launcher
	Mem      memory.Allocator
	Logger   hclog.Logger
}

var _ StageExecutor = (*HostExecutor)(nil)

// RunStage implements StageExecutor.
func (e *HostExecutor) RunStage(ctx context.Context, task *StageTask, progress func(sdk.Progress)) (*StageOutcome, error) {
	start := []pluginhost.StartOption{pluginhost.PassEnv(task.PassEnv...)}
	if task.PluginHashes != nil {
		start = append(start, pluginhost.LockedTo(task.LockFile, task.PluginHashes))
	}
	client, err := e.Launcher.Start(ctx, task.Plugin, start...)
	if err != nil {
		return nil, &sdk.StageError{Stage: task.Stage, Op: "start plugin " + task.Plugin, Err: err}
	}
	defer client.Kill()
	diags, err := client.Configure(ctx, task.Kind, task.Config)
	if err != nil {
		return nil, &sdk.StageError{Stage: task.Stage, Op: "configure", Err: err}
	}
	if diags.HasErrors() {
		return nil, &sdk.StageError{Stage: task.Stage, Op: "configure", Err: diags}
	}
	return RunTask(ctx, client, task, e.Mem, e.Logger, progress)
}

// ReadDecision reads the last row of a decider's decision port file.
func ReadDecision(stage, port, path string, mem memory.Allocator) (*runstore.Decision, error) {
	rd, err := runstore.OpenFiles([]string{path}, mem)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	d := &runstore.Decision{Stage: stage}
	found := false
	for rd.Next() {
		b := rd.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		last := int(b.NumRows()) - 1
		d.Status = stringCell(b, "status", last)
		d.Reason = stringCell(b, "reason", last)
		d.Chosen = stringCell(b, "chosen_candidate_id", last)
		d.ChosenName = stringCell(b, "chosen_name", last)
		found = true
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("decision port %q is empty", port)
	}
	if d.Status == "" {
		return nil, fmt.Errorf("decision port %q has no utf8 column \"status\" with a value", port)
	}
	return d, nil
}
