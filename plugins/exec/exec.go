// Package exec is the "exec" stage: an evaluation stage that trains and
// measures each candidate by running an external command, so that a
// trainer written in any language (PyTorch, JAX, scikit-learn, a shell
// script) can sit in a sweetspot loop.
//
// Its ports are the evaluation stage's: input port "input" is a candidates
// table, optional port "dataset" a dataset stage's data port, output port
// "results" has the evaluation stage's results schema, so resize and the
// report read it unchanged, and output port "models" keeps the trials'
// artifacts (see "Artifacts" below). Like evaluation, it writes one batch per
// finished trial and declares sdk.Resume, so a resumed run does not run a
// journalled trial again.
//
// # The command's contract
//
// The command (an argv list, never a shell line) runs once per trial, in a
// fresh working directory WORK/trials/r<round>/<candidate_id> under the
// stage's work directory (the host's run directory work/<stage>), in its own
// process group. It gets:
//
//   - on stdin, the candidate as one JSON object (see "The candidate"
//     below; also in the working directory as candidate.json, and in
//     SWEETSPOT_CANDIDATE_JSON);
//   - each member of that object as SWEETSPOT_<NAME>, the name upper-cased
//     with anything but letters, digits and _ replaced by _: the columns
//     (SWEETSPOT_CANDIDATE_ID, SWEETSPOT_NAME, SWEETSPOT_FAMILY,
//     SWEETSPOT_FAMILY_KIND, SWEETSPOT_SIZE, SWEETSPOT_DEPTH and
//     SWEETSPOT_WIDTH for the mlp kind, SWEETSPOT_LEARNING_RATE,
//     SWEETSPOT_BATCH_SIZE, SWEETSPOT_EPOCHS, SWEETSPOT_PREPROCESS, ...),
//     each knob (SWEETSPOT_CHANNELS for a knob "channels"), and
//     SWEETSPOT_KNOBS, every knob as JSON text ("{}" when none). Numbers
//     are in the shortest form that reads back exactly, null is empty.
//     When two names give one variable (a knob "Width" and a column
//     "width", knobs "lr-max" and "lr_max") the column's value is kept,
//     else the first knob's in sorted order; the stage's own variables
//     below win over any of them, except SWEETSPOT_SEED, which a seed
//     column or knob replaces;
//   - SWEETSPOT_SEED, a seed in [0, 2³¹) derived from the stage's seed,
//     the candidate's training settings and its repeat (as the evaluation
//     stage derives its own; for kinds other than mlp, the kind, size and
//     knobs too), so that a trial's result depends on nothing else (a seed
//     column or knob replaces it); repeat 0's seed is the one a stage
//     without repeats gives;
//   - SWEETSPOT_REPEAT (and the candidate's repeat member), which
//     measurement of the candidate this run is: 0 for the first. With
//     repeats = N the command runs N times per candidate, as repeats 0 to
//     N-1, each a trial of its own (span, working directory
//     ID-repeatR from the second on, results row, journal entry: a
//     resumed stage runs only the repeats that had not finished); a
//     candidate naming a later repeat (resize asking for one more
//     measurement near its target) runs once, as that repeat;
//   - when the dataset port is connected, the dataset, written once per
//     stage run as WORK/data/{train,validation,test}.{arrow,csv}: paths in
//     SWEETSPOT_TRAIN, SWEETSPOT_VALIDATION and SWEETSPOT_TEST, the target
//     column's name in SWEETSPOT_TARGET, the task (classification or
//     regression) in SWEETSPOT_TASK, the class count in SWEETSPOT_CLASSES
//     (0 for regression) and the format in SWEETSPOT_DATASET_FORMAT. Each
//     file has one float64 column per feature and the target column (int64
//     class index or float64 value); an empty split is a file with no rows.
//     The files hold the dataset as it is: the candidate's preprocess
//     (SWEETSPOT_PREPROCESS) is the command's to apply;
//   - with slots, SWEETSPOT_SLOT and slot_env (CUDA_VISIBLE_DEVICES by
//     default): the slot the trial holds, which no other running trial
//     holds; with threads = N, N in SWEETSPOT_THREADS and the thread
//     variables of OpenMP, MKL, OpenBLAS, numexpr and Accelerate;
//   - SWEETSPOT_WORKDIR (its working directory), SWEETSPOT_OUTPUT (jsonl or
//     arrow), SWEETSPOT_METRICS_FILE (arrow output only),
//     SWEETSPOT_TIMEOUT_SECONDS, SWEETSPOT_RUN_ID, SWEETSPOT_STAGE, and
//     TRACEPARENT, the W3C trace context of the trial's span;
//   - the plugin's environment, which the host keeps explicit (a few
//     harmless variables such as PATH, HOME and LANG, and those the stage
//     block lists in pass_env: see docs/security.md), without go-plugin's
//     PLUGIN_* and the host's SWEETSPOT_* variables, overridden by the env
//     attribute. A secret such as a cloud key reaches the command only
//     when the stage lists it in pass_env (or writes it in env, which puts
//     it in the pipeline file).
//
// It reports its metrics either as JSON lines on stdout (output = "jsonl",
// the default): the last object without an "epoch" key is the trial's
// metrics, each object with one ({"epoch": 3, "loss": 0.41, ...}) becomes an
// "epoch" event on the trial's span, and lines that do not start with "{"
// are logged and otherwise ignored; or as an Arrow IPC file (or stream) at
// SWEETSPOT_METRICS_FILE (output = "arrow"), one column per metric, the last
// row winning.
//
// Metrics read: accuracy, loss, latency_p50_ms, latency_p95_ms,
// throughput_per_s, model_bytes, peak_bytes, params, flops, train_seconds,
// epochs_run, rmse, r2, accuracy_before, loss_before, rmse_before,
// nonzero_params, val_loss, best_epoch (numbers), stopped_by and artifact
// (strings).
// At least one of accuracy, loss and rmse must be there. Any other key (a
// metric of the trainer's own, or the results table's status, error and
// trace_id, which are the stage's) is not an error: it is logged and named
// on the trial's span as ignored_metrics.
// train_seconds defaults to the command's wall time, epochs_run to the
// number of epoch lines, and peak_bytes to the command's peak resident set
// size (its largest process), as the kernel reports it.
//
// # Parameter counts
//
// A params (or flops) the command reports replaces the candidate's in the
// results row: it is the count of the model that was trained. A family
// may leave the count to the trainer (an axis family without a params
// formula): its candidates carry params 0, and the command must then
// report params, or the trial fails. A reported params must be a whole
// number, at least 1 and below 2⁶², flops a whole number from 0 to
// 2⁶³-1; any other value fails the trial with an error naming it
// ("malformed metrics (stdout line 3): params is 0: want a parameter
// count: ..."). When the two counts differ, the span keeps the
// candidate's as candidate_params.
//
// A trial fails (status failed, its error the reason with the tail of the
// command's stderr) when the command cannot start, exits non-zero, is
// killed, outlives trial_timeout, or writes malformed or missing metrics;
// the stage goes on with the others. On timeout, cancellation or exit the
// whole process group is killed, so no child of the command outlives its
// trial.
//
// # Artifacts
//
// A trial's model leaves it as an artifact: the file or directory its
// command wrote, named by the artifact attribute or by the final metrics'
// "artifact" key (which wins). After an ok trial the stage writes it to
// output port "models" (tables.ModelsSchema, one row per trial: the bytes
// as written, format onnx for *.onnx, file for another file, tar for a
// directory, with their digest) before the trial's results row, and
// declares it in sdk.Resume, so the cache and a resumed run keep it like
// the results. A missing artifact, or a path that is absolute, leaves the
// working directory, or leads out of it through a symlink, fails the
// trial with an error naming the stage, the trial and the path
// (artifact.go). docs/exec.md has the whole contract.
//
// # Pruning
//
// With a pruner block (plugins/internal/prune: median or asha), every
// epoch line's metric is judged against the other trials' at the same
// step, and the stage answers each epoch line in the trial's control file
// (SWEETSPOT_CONTROL_FILE, replaced whole: {"step": N, "stop": bool,
// "reason": ...}). A command told to stop may write its final metrics; it
// is killed with its process group after the pruner's grace. Its row has
// status pruned, its final metrics (or its last epoch line's values), the
// reason as its error and stopped_by "pruner". Each finished trial's curve
// is appended to pruner-history.jsonl in the work directory, which the
// stage's later rounds read back. docs/exec.md has the whole protocol.
//
// # Search
//
// With a search block (plugins/internal/space; space.go), each candidate
// is a model size whose settings are tried as trials of their own: the
// setting's params set the training columns they are named after
// (learning_rate, batch_size, epochs, preprocess) or are knobs by name,
// and the command reports the search's validation metric with its final
// metrics. The ok trial best on it is the size's chosen setting
// (setting_chosen true); the others stay in the results table, which the
// resize stage leaves out. With repeats, a size is searched once and its
// other repeats train the chosen setting again. A size's rows are written
// together when its search ends; each finished trial is journalled in its
// working directory meanwhile, so a resumed run does not train it again
// (searchjournal.go). Only the chosen trials' artifacts are kept.
// docs/exec.md, "Searching training settings".
//
// # The candidate
//
// The JSON object holds the candidate's columns, its knobs by name, and
// its knobs again as one object:
//
//	{"candidate_id": "convnet-s4", "name": "convnet-s4", "family": "convnet",
//	 "family_kind": "axis", "size": 4, "params": 0, "flops": 0,
//	 "learning_rate": 0.01, "batch_size": 32, "epochs": 8,
//	 "preprocess": "none", "quantize": "none", "prune_fraction": 0, "round": 1,
//	 "channels": 32, "layers": 3,
//	 "knobs": {"channels": 32, "layers": 3}}
//
// In order:
//
//   - the columns candidate_id, name, family, family_kind, size, depth and
//     width (for the mlp kind only: they are its shape; other kinds leave
//     them 0 and may have knobs of those names), params, flops (0 when the
//     trainer is to count them, or unknown), learning_rate, batch_size,
//     epochs, preprocess, quantize, prune_fraction, round and repeat, as the
//     candidates table's reader gives them (a table without name,
//     family_kind or size gets the candidate_id, mlp and the width);
//   - any column an upstream stage added to the candidates table, as is
//     (a non-finite float is null);
//   - each knob at the top level, by name, sorted: its value a number,
//     string or boolean. A knob whose name a column above (or "knobs")
//     already has is not: there the column wins, as in the environment;
//   - "knobs": every knob as an object ({} when none), colliding ones
//     included, so a trainer that must tell a knob from a column reads it
//     there. (The candidates table's knobs column, JSON text, is not
//     passed as text.)
//
// An mlp candidate's knobs are its depth and width, so for the mlp kind
// they are only under "knobs", with the columns' values.
//
// # Traces and logs
//
// Each trial is a span "trial <name>", its candidate's model name (for a
// variant, whose candidate_id differs, "trial <name> (<candidate_id>)";
// " repeat R" after it from the second repeat on, with the seed as an
// attribute),
// with the evaluation stage's attributes (candidate_id, width, depth,
// params, ..., accuracy, latency_p95_ms, status), name, family_kind, size
// and knobs (JSON text), the command's exit_code and stderr_tail (its last
// 4 KiB), and one "epoch" event per epoch line. Log lines name the trial by
// candidate (the name), with candidate_id for a variant. Working
// directories are named by candidate_id, which is unique.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "exec"

// Port names: the evaluation stage's.
const (
	InputPort   = evaluation.InputPort
	DatasetPort = evaluation.DatasetPort
	OutputPort  = evaluation.OutputPort
	ResumePort  = evaluation.ResumePort
	// ModelsPort keeps each ok trial's artifact (tables.ModelsSchema).
	ModelsPort = evaluation.ModelsPort
	// ResumeModelsPort brings back the models rows of the trials that
	// had finished.
	ResumeModelsPort = evaluation.ResumeModelsPort
)

// Dataset formats and output modes.
const (
	FormatArrow = "arrow"
	FormatCSV   = "csv"
	OutputJSONL = "jsonl"
	OutputArrow = "arrow"
)

var (
	formats = []string{FormatArrow, FormatCSV}
	outputs = []string{OutputJSONL, OutputArrow}
)

// Defaults.
const (
	DefaultTrialTimeout = 10 * time.Minute
	DefaultParallelism  = 1
	DefaultSeed         = 1
)

const maxParallelism = 1024

// Config is the body of a `stage "exec" "NAME" {}` block.
type Config struct {
	Command       []string          `hcl:"command" doc:"The command run once per trial, as a list: the program and its arguments, never parsed by a shell. A program without a slash is looked up on PATH; one with a slash, and any argument naming an existing file or directory, is taken relative to the pipeline file's directory."`
	Env           map[string]string `hcl:"env,optional" doc:"Environment variables added to the command's (names starting with SWEETSPOT_ are the stage's own and cannot be set)."`
	TrialTimeout  *time.Duration    `hcl:"trial_timeout,optional" doc:"Longest run of one trial, as a duration such as \"90s\" (default 10m): a command still running then is killed with its whole process group and the trial fails. (The host's timeout attribute bounds the whole stage.)"`
	Parallelism   *int              `hcl:"parallelism,optional" doc:"Trials run at once (default 1)."`
	DatasetFormat string            `hcl:"dataset_format,optional" doc:"How the dataset is handed to the command: arrow (Arrow IPC files, the default) or csv (with a header line)."`
	Output        string            `hcl:"output,optional" doc:"How the command reports its metrics: jsonl (JSON objects on stdout, the last one wins; the default) or arrow (an Arrow IPC file at $SWEETSPOT_METRICS_FILE)."`
	Seed          *int64            `hcl:"seed,optional" doc:"Seed mixed with each candidate's training settings and repeat into SWEETSPOT_SEED (default 1)."`
	Repeats       *int              `hcl:"repeats,optional" doc:"Measurements of each candidate, each a run of the command with its own SWEETSPOT_REPEAT and SWEETSPOT_SEED (default 1): a candidate gives repeats 0 to repeats-1, one results row each, so resize can measure the noise. A candidate that names a later repeat (resize asking for one more) is run once, as that repeat."`
	Slots         []string          `hcl:"slots,optional" doc:"Resources trials hold one each, such as GPU ids [\"0\", \"1\"]: a trial runs only with a slot free, gets it in slot_env and SWEETSPOT_SLOT, and no two running trials share one (at most as many trials run at once as there are slots)."`
	SlotEnv       string            `hcl:"slot_env,optional" doc:"The variable a trial's slot is handed in besides SWEETSPOT_SLOT (default CUDA_VISIBLE_DEVICES)."`
	Threads       *int              `hcl:"threads,optional" doc:"Threads per trial, passed explicitly as OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_NUM_THREADS, NUMEXPR_NUM_THREADS, VECLIB_MAXIMUM_THREADS and SWEETSPOT_THREADS (PyTorch, numpy and most BLAS libraries read them), so parallel trials do not oversubscribe the cores."`
	Pruner        *prune.Block      `hcl:"pruner,block" doc:"Stop trials early across trials: pruner \"median\" (a trial whose best value so far is worse than the median of the finished trials at the same step; warmup_trials, warmup_steps) or pruner \"asha\" (asynchronous successive halving; min_resource, reduction_factor), judging the metric (default accuracy) of the command's epoch lines. A stopped trial's status is pruned."`
	Artifact      string            `hcl:"artifact,optional" doc:"The model file (\"model.onnx\") or directory each trial's command writes, relative to its working directory: after an ok trial it is kept in the models port with its digest, for sweetspot model export. A trial whose final metrics name an artifact (\"artifact\": \"model.onnx\") keeps that one without it. A missing artifact fails the trial."`
	Search        *space.Block      `hcl:"search,block" doc:"A search space tried for every candidate: search \"grid\" (every combination), \"random\" (trials settings drawn with seed) or \"halving\" (successive halving over random settings, the candidate's epochs split into rungs), with one param block per knob (values, uniform, log_uniform or int_range). Each setting is a trial of its own; the setting best on the validation metric (metric, default val_loss) is the size's result, the others stay in the results table with setting_chosen false."`
	BaseDir       string            `hcl:"base_dir,optional" doc:"Set by the host to the pipeline file's directory; relative paths in command are resolved against it. Users need not set it."`
}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		InputFiles:  []string{"command"},
		Description: "Trains and measures every candidate by running an external command (any language), which reads the candidate as JSON and the dataset as files and reports its metrics as JSON lines or Arrow.",
		Inputs: []sdk.Port{
			{Name: InputPort, Description: "The candidates to train (model_choice's or optimization's candidates table).", Schema: tables.CandidatesSchema},
			{Name: DatasetPort, Schema: tables.DatasetSchema, Optional: true, Description: "The dataset (a dataset stage's data port), written once as train, validation and test files for the command. Leave it unset when the command loads its own data."},
			{Name: ResumePort, Optional: true, Schema: tables.ResultsSchema, Description: "Set by the host when it resumes an interrupted run: the results of the trials that had finished, whose commands are not run again."},
			{Name: ResumeModelsPort, Optional: true, Schema: tables.ModelsSchema, Description: "Set by the host when it resumes an interrupted run: the artifacts of the trials that had finished."},
		},
		Outputs: []sdk.Port{{
			Name:        OutputPort,
			Description: "One row per candidate: its columns, the metrics its command reported, status and error (the evaluation stage's results schema).",
			Schema:      tables.ResultsSchema,
		}, {
			Name:        ModelsPort,
			Description: "One row per ok trial that wrote an artifact (the artifact attribute, or \"artifact\" in its final metrics): the file's bytes as written (format onnx for *.onnx, else file; a directory as a tar archive) with their digest, for `sweetspot model export`.",
			Schema:      tables.ModelsSchema,
		}},
		Resume: &sdk.Resume{Output: OutputPort, Input: ResumePort, More: []sdk.ResumePort{{Output: ModelsPort, Input: ResumeModelsPort}}},
	}
}

// Register adds the exec stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage runs the command once per candidate when run.
type Stage struct {
	path          string // the program, an absolute path
	argv          []string
	env           map[string]string
	timeout       time.Duration
	parallelism   int
	datasetFormat string
	output        string
	seed          uint64
	repeats       int
	prune         *prune.Settings // nil: no pruner
	slots         []string
	slotEnv       string
	threads       int             // 0: not set
	artifact      string          // "": none unless the trainer names one
	search        *space.Space    // nil: no search block
	settings      []space.Setting // the search's, the same for every size
}

// DefaultSlotEnv is the variable a trial's slot is handed in.
const DefaultSlotEnv = "CUDA_VISIBLE_DEVICES"

// threadVars are the variables threads sets: OpenMP's (PyTorch's intra-op
// pool, most BLAS builds), MKL's, OpenBLAS's, numexpr's, Accelerate's.
var threadVars = []string{"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"}

const maxThreads = 4096

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	s := &Stage{
		env: map[string]string{}, timeout: DefaultTrialTimeout, parallelism: DefaultParallelism,
		datasetFormat: FormatArrow, output: OutputJSONL, seed: DefaultSeed, repeats: evaluation.DefaultRepeats,
	}
	if path, argv, err := resolveCommand(c.Command, c.BaseDir); err != nil {
		bad([]string{"command"}, err.summary, err.detail)
	} else {
		s.path, s.argv = path, argv
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			bad([]string{"env", k}, "Invalid environment variable name", fmt.Sprintf("%q cannot name an environment variable: a name is not empty and has no '=' or NUL.", k))
		case strings.HasPrefix(strings.ToUpper(k), "SWEETSPOT_"):
			bad([]string{"env", k}, "Reserved environment variable", fmt.Sprintf("%s: the SWEETSPOT_ variables are set by the stage for each trial (the candidate, the dataset, the working directory); pick another name.", k))
		case strings.ContainsRune(c.Env[k], 0):
			bad([]string{"env", k}, "Invalid environment variable value", fmt.Sprintf("The value of %s holds a NUL byte, which no environment can carry.", k))
		default:
			s.env[k] = c.Env[k]
		}
	}
	if c.TrialTimeout != nil {
		if *c.TrialTimeout <= 0 {
			bad([]string{"trial_timeout"}, "Invalid trial timeout", fmt.Sprintf("trial_timeout must be a positive duration; found %s.", *c.TrialTimeout))
		}
		s.timeout = *c.TrialTimeout
	}
	if c.Parallelism != nil {
		if *c.Parallelism < 1 || *c.Parallelism > maxParallelism {
			bad([]string{"parallelism"}, "Invalid parallelism", fmt.Sprintf("parallelism must be between 1 and %d; found %d.", maxParallelism, *c.Parallelism))
		}
		s.parallelism = *c.Parallelism
	}
	if c.DatasetFormat != "" {
		if !slices.Contains(formats, c.DatasetFormat) {
			bad([]string{"dataset_format"}, "Unknown dataset format", fmt.Sprintf("dataset_format must be arrow or csv; found %q.%s", c.DatasetFormat, suggest.Hint(c.DatasetFormat, formats)))
		}
		s.datasetFormat = c.DatasetFormat
	}
	if c.Output != "" {
		if !slices.Contains(outputs, c.Output) {
			bad([]string{"output"}, "Unknown output", fmt.Sprintf("output must be jsonl (JSON lines on stdout) or arrow (an Arrow IPC file at $SWEETSPOT_METRICS_FILE); found %q.%s", c.Output, suggest.Hint(c.Output, outputs)))
		}
		s.output = c.Output
	}
	if c.Repeats != nil {
		if *c.Repeats < 1 || *c.Repeats > evaluation.MaxRepeats {
			bad([]string{"repeats"}, "Invalid repeats", fmt.Sprintf("repeats must be between 1 and %d; found %d.", evaluation.MaxRepeats, *c.Repeats))
		}
		s.repeats = *c.Repeats
	}
	if c.Seed != nil {
		s.seed = uint64(*c.Seed)
	}
	s.slotEnv = DefaultSlotEnv
	if c.SlotEnv != "" {
		switch {
		case strings.ContainsAny(c.SlotEnv, "=\x00"):
			bad([]string{"slot_env"}, "Invalid environment variable name", fmt.Sprintf("%q cannot name an environment variable: a name is not empty and has no '=' or NUL.", c.SlotEnv))
		case strings.HasPrefix(strings.ToUpper(c.SlotEnv), "SWEETSPOT_"):
			bad([]string{"slot_env"}, "Reserved environment variable", fmt.Sprintf("%s: the SWEETSPOT_ variables are the stage's (the slot is in SWEETSPOT_SLOT already); pick another name.", c.SlotEnv))
		case len(c.Slots) == 0:
			bad([]string{"slot_env"}, "slot_env without slots", "slot_env names the variable a trial's slot is handed in: list the slots too, such as slots = [\"0\", \"1\"].")
		}
		s.slotEnv = c.SlotEnv
	}
	seen := map[string]bool{}
	for i, v := range c.Slots {
		switch {
		case v == "" || strings.ContainsRune(v, 0):
			bad([]string{"slots"}, "Invalid slot", fmt.Sprintf("Slot %d is empty or holds a NUL byte; a slot is a value such as a GPU id (\"0\").", i))
		case seen[v]:
			bad([]string{"slots"}, "Duplicate slot", fmt.Sprintf("Slot %q is listed twice: two trials would share it.", v))
		}
		seen[v] = true
	}
	s.slots = c.Slots
	if _, ok := c.Env[s.slotEnv]; ok && len(c.Slots) > 0 {
		bad([]string{"env", s.slotEnv}, "Variable set twice", fmt.Sprintf("%s is each trial's slot (slots); leave it out of env.", s.slotEnv))
	}
	if c.Threads != nil {
		if *c.Threads < 1 || *c.Threads > maxThreads {
			bad([]string{"threads"}, "Invalid threads", fmt.Sprintf("threads must be between 1 and %d; found %d.", maxThreads, *c.Threads))
		}
		s.threads = *c.Threads
		for _, k := range threadVars {
			if _, ok := c.Env[k]; ok {
				bad([]string{"env", k}, "Variable set twice", fmt.Sprintf("%s is set by threads = %d; leave it out of env.", k, *c.Threads))
			}
		}
	}
	if c.Artifact != "" {
		if err := checkArtifactPath(c.Artifact); err != nil {
			bad([]string{"artifact"}, "Invalid artifact path", fmt.Sprintf("artifact %q: %v.", c.Artifact, err))
		}
		s.artifact = c.Artifact
	}
	if c.Pruner != nil {
		p, d := prune.Check("pruner", *c.Pruner)
		diags = append(diags, d...)
		s.prune = &p
	}
	if c.Search != nil {
		sp, d := checkSearch(*c.Search)
		diags = append(diags, d...)
		if sp != nil {
			s.search, s.settings = sp, sp.Settings()
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
}

type commandError struct{ summary, detail string }

// resolveCommand makes a command runnable from any working directory: the
// trial runs in its own directory, but the user wrote the command relative
// to the pipeline file, as a shell in that directory would read it. path is
// the program's absolute path; argv[0] stays as written for a program
// found on PATH.
func resolveCommand(command []string, baseDir string) (path string, argv []string, _ *commandError) {
	if len(command) == 0 || command[0] == "" {
		return "", nil, &commandError{"Missing command", "command must name a program, such as [\"python3\", \"train.py\"]."}
	}
	for i, a := range command {
		if strings.ContainsRune(a, 0) {
			return "", nil, &commandError{"Invalid command", fmt.Sprintf("Argument %d of command holds a NUL byte.", i)}
		}
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) || baseDir == "" {
			return p
		}
		return filepath.Join(baseDir, p)
	}
	argv = slices.Clone(command)
	prog := command[0]
	if strings.ContainsRune(prog, '/') || strings.ContainsRune(prog, filepath.Separator) {
		p := abs(prog)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", nil, &commandError{"Command not found", fmt.Sprintf("The program %s does not exist (a path with a slash is relative to the pipeline file's directory).", p)}
		case err != nil:
			return "", nil, &commandError{"Command not found", err.Error()}
		case fi.IsDir():
			return "", nil, &commandError{"Command not found", fmt.Sprintf("The program %s is a directory.", p)}
		case fi.Mode()&0o111 == 0:
			return "", nil, &commandError{"Command not executable", fmt.Sprintf("The program %s is not executable: chmod +x it, or run it through its interpreter, such as [\"python3\", %q].", p, prog)}
		}
		path, argv[0] = p, p
	} else {
		p, err := osexec.LookPath(prog)
		if err != nil {
			return "", nil, &commandError{"Command not found", fmt.Sprintf("The program %q is not on PATH (%s). Install it, or give its path.", prog, os.Getenv("PATH"))}
		}
		// A PATH entry such as "." would find it relative to the plugin's
		// directory, not the trial's.
		if path, err = filepath.Abs(p); err != nil {
			return "", nil, &commandError{"Command not found", err.Error()}
		}
	}
	if baseDir != "" {
		for i := 1; i < len(argv); i++ {
			if a := argv[i]; a != "" && !filepath.IsAbs(a) && !strings.HasPrefix(a, "-") {
				if _, err := os.Stat(filepath.Join(baseDir, a)); err == nil {
					argv[i] = filepath.Join(baseDir, a)
				}
			}
		}
	}
	return path, argv, nil
}

// Run runs every candidate's trial and writes the results.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	mw, err := out.Writer(ModelsPort)
	if err != nil {
		return err
	}
	cands, err := readCandidates(in, InputPort)
	if err != nil {
		return err
	}
	var ds *prep.Dataset
	if r, err := in.Reader(DatasetPort); err == nil {
		if ds, err = prep.ReadDataset(DatasetPort, r); err != nil {
			return err
		}
	} else if !errors.Is(err, sdk.ErrNotConnected) {
		return err
	}
	log := sdk.Logger(ctx)
	info := sdk.Info(ctx)

	work := info.WorkDir
	if work == "" {
		// A host that gives no work directory (an in-process test) gets
		// a temporary one, gone with the run.
		if work, err = os.MkdirTemp("", "sweetspot-exec-"); err != nil {
			return fmt.Errorf("make a work directory: %w", err)
		}
		defer os.RemoveAll(work)
	} else if work, err = filepath.Abs(work); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	env := map[string]string{
		"SWEETSPOT_OUTPUT":          s.output,
		"SWEETSPOT_TIMEOUT_SECONDS": fmt.Sprintf("%g", s.timeout.Seconds()),
		"SWEETSPOT_RUN_ID":          info.RunID,
		"SWEETSPOT_STAGE":           info.Stage,
	}
	if s.threads > 0 {
		for _, k := range append(threadVars, "SWEETSPOT_THREADS") {
			env[k] = strconv.Itoa(s.threads)
		}
	}
	if ds != nil {
		files, err := writeDataset(sdk.Allocator(ctx), ds, filepath.Join(work, "data"), s.datasetFormat)
		if err != nil {
			return fmt.Errorf("write the dataset for the command: %w", err)
		}
		for k, v := range map[string]string{
			"SWEETSPOT_TRAIN": files.train, "SWEETSPOT_VALIDATION": files.validation, "SWEETSPOT_TEST": files.test,
			"SWEETSPOT_TARGET": ds.Target, "SWEETSPOT_TASK": ds.Task.String(), "SWEETSPOT_CLASSES": fmt.Sprint(ds.Classes),
			"SWEETSPOT_DATASET_FORMAT": s.datasetFormat,
		} {
			env[k] = v
		}
	}

	cands = repeated(cands, s.repeats)
	results, models := evaluation.NewResultWriter(ctx, w), evaluation.NewModelWriter(ctx, mw)
	var pr *pruning
	if s.prune != nil {
		pr = newPruning(*s.prune, work, log)
	}

	// Each running trial holds a slot of its own; without slots, every
	// trial gets the stage's env as is.
	parallelism, slots := s.parallelism, make(chan string, len(s.slots))
	for _, v := range s.slots {
		slots <- v
	}
	if len(s.slots) > 0 {
		parallelism = min(parallelism, len(s.slots))
	}
	run := func(ctx context.Context, c candidate, dir string) (tables.Result, *tables.Model, error) {
		trialEnv := env
		if len(s.slots) > 0 {
			var slot string
			select {
			case slot = <-slots:
			case <-ctx.Done():
				return tables.Result{}, nil, ctx.Err()
			}
			defer func() { slots <- slot }()
			trialEnv = maps.Clone(env)
			trialEnv["SWEETSPOT_SLOT"], trialEnv[s.slotEnv] = slot, slot
		}
		// With a search, each size is a study of the pruner's: a setting
		// is judged against the other settings of its size.
		study := ""
		if s.search != nil {
			study = sizeStudy(c.Candidate)
		}
		return s.trial(ctx, c, dir, trialEnv, pr.forTrial(work, dir, c.Candidate, study))
	}
	if s.search != nil {
		return s.runSearch(ctx, in, results, models, cands, work, parallelism, run)
	}

	cands, resumed, err := evaluation.SkipFinished(in, results, models, cands, func(c candidate) tables.Candidate { return c.Candidate })
	if err != nil {
		return err
	}
	if resumed > 0 {
		log.Info("resuming", "finished_before", resumed, "to_run", len(cands))
	}
	dirs := trialDirs(filepath.Join(work, "trials"), cands)
	log.Info("running trials", "candidates", len(cands), "parallelism", s.parallelism, "command", s.argv, "program", s.path, "work_dir", work)

	var mu sync.Mutex
	done := 0
	return evaluation.ForEach(ctx, len(cands), parallelism, func(i int) error {
		r, m, err := run(ctx, cands[i], dirs[i])
		if err != nil {
			return err
		}
		// The models row first: the results row marks the trial finished
		// on resume, so its artifact is in the journal with it.
		if m != nil {
			if _, err := models.Keep(*m); err != nil {
				return err
			}
		}
		if err := results.Write(r); err != nil {
			return err
		}
		mu.Lock()
		done++
		p := sdk.Progress{Done: int64(done), Total: int64(len(cands)), Message: progressMessage(r), Metrics: progressMetrics(r)}
		mu.Unlock()
		sdk.ReportProgress(ctx, p)
		return nil
	})
}

// repeated lists the trials of the candidates when each runs n times
// (evaluation.Repeats), each repeat laid out again for the command.
func repeated(cands []candidate, n int) []candidate {
	var out []candidate
	for _, c := range cands {
		for _, r := range evaluation.Repeats([]tables.Candidate{c.Candidate}, n) {
			out = append(out, newCandidate(r, c.extra))
		}
	}
	return out
}

// trialDirs names each trial's working directory after its round and
// candidate_id (and its repeat from the second on), made safe for a file
// name; ids that collide once made safe get their index appended.
func trialDirs(root string, cands []candidate) []string {
	out := make([]string, len(cands))
	used := map[string]bool{}
	for i, c := range cands {
		name := safeName(c.ID)
		if c.Repeat > 0 {
			name = safeName(fmt.Sprintf("%s-repeat%d", c.ID, c.Repeat))
		}
		if used[fmt.Sprintf("%d/%s", c.Round, name)] {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		used[fmt.Sprintf("%d/%s", c.Round, name)] = true
		out[i] = filepath.Join(root, fmt.Sprintf("r%d", c.Round), name)
	}
	return out
}

func safeName(id string) string {
	var b strings.Builder
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || strings.Trim(name, ".") == "" {
		name = "candidate" + name
	}
	if len(name) > 100 {
		name = name[:100]
	}
	return name
}

func progressMessage(r tables.Result) string {
	switch {
	case r.Status == tables.StatusPruned:
		return fmt.Sprintf("trial %s pruned: %s", candidateLabel(r.Candidate), firstLine(r.Error))
	case r.Status != tables.StatusOK:
		return fmt.Sprintf("trial %s failed: %s", candidateLabel(r.Candidate), firstLine(r.Error))
	case !isNaN(r.Accuracy):
		return fmt.Sprintf("trial %s: accuracy %.4f%s", candidateLabel(r.Candidate), r.Accuracy, latencyText(r.LatencyP95Ms))
	case !isNaN(r.RMSE):
		return fmt.Sprintf("trial %s: rmse %.4g%s", candidateLabel(r.Candidate), r.RMSE, latencyText(r.LatencyP95Ms))
	default:
		return fmt.Sprintf("trial %s: loss %.4g", candidateLabel(r.Candidate), r.Loss)
	}
}

func progressMetrics(r tables.Result) map[string]float64 {
	m := map[string]float64{"train_seconds": r.TrainSeconds, "epochs_run": float64(r.EpochsRun)}
	for k, v := range map[string]float64{"accuracy": r.Accuracy, "loss": r.Loss, "rmse": r.RMSE, "latency_p95_ms": r.LatencyP95Ms} {
		if !isNaN(v) {
			m[k] = v
		}
	}
	if r.ModelBytes >= 0 {
		m["model_bytes"] = float64(r.ModelBytes)
	}
	return m
}

func isNaN(v float64) bool { return v != v }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
