package sdktest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

// recorder is a testing.TB that keeps the errors it is given instead of
// failing the test, so that a test can assert that the suite fails.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Error(args ...any) { r.Errorf("%s", fmt.Sprint(args...)) }
func (r *recorder) Fail()             { r.Errorf("Fail called") }
func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.errs) > 0
}
func (r *recorder) Fatalf(format string, args ...any) { r.Errorf(format, args...); runtime.Goexit() }
func (r *recorder) Fatal(args ...any)                 { r.Error(args...); runtime.Goexit() }
func (r *recorder) FailNow()                          { runtime.Goexit() }
func (r *recorder) Helper()                           {}

func (r *recorder) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errs...)
}

// suiteErrors runs f against a recorder on its own goroutine (a Fatal there
// ends only that goroutine) and returns the errors the suite reported
// before it returned.
func suiteErrors(t *testing.T, f func(tb testing.TB)) []string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.errors()
}

var xSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)

type clipConfig struct {
	Min     *float64       `hcl:"min,optional" doc:"Values below become min."`
	Max     *float64       `hcl:"max,optional" doc:"Values above become max."`
	Pause   *time.Duration `hcl:"pause,optional" doc:"Wait between batches."`
	Comment string         `hcl:"comment,optional"`
}

// clashConfig names attributes like an input port and like host-reserved
// attributes (docs/plugins.md, section 4, lists them).
type clashConfig struct {
	Input       string   `hcl:"input,optional"`
	Timeout     string   `hcl:"timeout,optional"`
	PassEnv     []string `hcl:"pass_env,optional"`
	MemoryLimit string   `hcl:"memory_limit,optional"`
}

// flaws are the ways a stage can be broken. The zero value is a correct
// stage.
type flaws struct {
	leakOutput      bool // never releases the batches it builds
	leakOnCancel    bool // drops a batch it built when its run fails (as a cancelled run does)
	ignoreCancel    bool // works for 2 s without looking at ctx
	wrongSchema     bool // writes a batch without its declared column
	printStdout     bool // writes to stdout
	pathless        bool // reports config problems without an attribute path
	closePanics     bool // Close twice panics
	badInputPanics  bool // assumes column 0 is float64
	overProgress    bool // reports Done > Total
	noDescription   bool // describes nothing
	requiredResume  bool // declares its resume port required
	fakeErrorOnBigX bool // fails on x > 15 (a legitimate input error)
	wrongPath       bool // reports a config problem at an undeclared path
}

// clip clamps column x of its input into [min, max].
type clip struct {
	cfg    clipConfig
	f      flaws
	closed chan struct{}
	runs   *atomic.Int64
}

func (c *clip) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) (err error) {
	c.runs.Add(1)
	if c.f.ignoreCancel {
		// Busy for 2 s from the start, deaf to ctx.
		for range 100 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if c.f.leakOnCancel {
		// Built first thing, released only on the way out of a run that
		// succeeds.
		b := array.NewFloat64Builder(sdk.Allocator(ctx))
		b.Append(1)
		scratch := b.NewArray()
		b.Release()
		defer func() {
			if err == nil {
				scratch.Release()
			}
		}()
	}
	if c.f.printStdout {
		fmt.Println("clip: starting")
	}
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("output")
	if err != nil {
		return err
	}
	lo, hi := -1e300, 1e300
	if c.cfg.Min != nil {
		lo = *c.cfg.Min
	}
	if c.cfg.Max != nil {
		hi = *c.cfg.Max
	}
	mem := sdk.Allocator(ctx)
	var done int64
	for r.Next() {
		b := r.RecordBatch()
		var xs *array.Float64
		if c.f.badInputPanics {
			xs = b.Column(0).(*array.Float64)
		} else {
			idx := b.Schema().FieldIndices("x")
			if len(idx) == 0 {
				return &sdk.InputError{Port: "input", Row: -1, Column: "x", Err: errors.New("no column x")}
			}
			var ok bool
			if xs, ok = b.Column(idx[0]).(*array.Float64); !ok {
				return &sdk.InputError{Port: "input", Row: -1, Column: "x", Err: fmt.Errorf("column x is %s, want float64", b.Column(idx[0]).DataType())}
			}
		}
		name := "x"
		if c.f.wrongSchema {
			name = "y"
		}
		fb := array.NewFloat64Builder(mem)
		for i := range xs.Len() {
			v := xs.Value(i)
			if c.f.fakeErrorOnBigX && v > 15 {
				fb.Release()
				return &sdk.InputError{Port: "input", Row: done + int64(i), Column: "x", Err: fmt.Errorf("%g is too big", v)}
			}
			fb.Append(min(max(v, lo), hi))
		}
		col := fb.NewArray()
		fb.Release()
		rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: name, Type: arrow.PrimitiveTypes.Float64}}, nil), []arrow.Array{col}, int64(xs.Len()))
		col.Release()
		err := w.Write(rec)
		if !c.f.leakOutput {
			rec.Release()
		}
		if err != nil {
			return err
		}
		done += int64(xs.Len())
		total := done
		if c.f.overProgress {
			total = done - 1
		}
		sdk.ReportProgress(ctx, sdk.Progress{Done: done, Total: total})
		if c.cfg.Pause != nil {
			select {
			case <-time.After(*c.cfg.Pause):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return r.Err()
}

func (c *clip) Close(context.Context) error {
	if c.f.closePanics {
		close(c.closed)
		return nil
	}
	select {
	case <-c.closed:
	default:
		close(c.closed)
	}
	return nil
}

// clipSet registers clip with the given flaws and counts its runs.
func clipSet(f flaws) (*sdk.Set, *atomic.Int64) {
	runs := &atomic.Int64{}
	set := sdk.NewSet(sdk.WithName("cliptest"), sdk.WithVersion("1.0.0"))
	info := sdk.StageInfo{
		Description: "Clamps column x into [min, max].",
		Inputs: []sdk.Port{
			{Name: "input", Schema: xSchema},
			{Name: "resume", Schema: xSchema, Optional: !f.requiredResume},
		},
		Outputs: []sdk.Port{{Name: "output", Schema: xSchema}},
		Resume:  &sdk.Resume{Output: "output", Input: "resume"},
	}
	if f.noDescription {
		info.Description = ""
	}
	sdk.Register(set, "clip", info, func(c clipConfig) (sdk.Stage, error) {
		if c.Comment == "reject" {
			// A problem of the whole block has no attribute to point at.
			return nil, sdk.Diagnostics{{Severity: sdk.SeverityError, Summary: "Rejected", Detail: "The comment says so."}}
		}
		if c.Min != nil && c.Max != nil && *c.Min > *c.Max {
			if f.wrongPath {
				return nil, sdk.AttrError("range.max", "Empty range", "max is below min.")
			}
			if f.pathless {
				return nil, errors.New("min is above max")
			}
			return nil, sdk.AttrError("max", "Empty range", fmt.Sprintf("max (%g) is below min (%g).", *c.Max, *c.Min))
		}
		return &clip{cfg: c, f: f, closed: make(chan struct{}), runs: runs}, nil
	})
	return set, runs
}

func xBatches(t *testing.T, batches ...[]float64) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for _, xs := range batches {
		b := array.NewFloat64Builder(memory.DefaultAllocator)
		b.AppendValues(xs, nil)
		col := b.NewArray()
		b.Release()
		out = append(out, array.NewRecordBatch(xSchema, []arrow.Array{col}, int64(len(xs))))
		col.Release()
	}
	t.Cleanup(func() {
		for _, b := range out {
			b.Release()
		}
	})
	return out
}

// clipCases are the cases every clip variant is tested with: valid configs
// in each accepted form, and an invalid one.
func clipCases(t *testing.T) []sdktest.Case {
	in := xBatches(t, []float64{-5, 0, 5}, []float64{10, 20})
	return []sdktest.Case{
		{Name: "hcl", Config: "min = 0\nmax = 8\n", Inputs: map[string][]arrow.RecordBatch{"input": in}, CancelWithin: 500 * time.Millisecond},
		{Name: "go struct", Config: clipConfig{Min: ptr(1.0)}, Inputs: map[string][]arrow.RecordBatch{"input": in}, CancelWithin: 500 * time.Millisecond},
		{Name: "paused", Config: `pause = "100ms"`, Inputs: map[string][]arrow.RecordBatch{"input": in}, CancelWithin: 500 * time.Millisecond},
		{Name: "empty input", Config: nil, Inputs: map[string][]arrow.RecordBatch{"input": nil}, CancelWithin: 500 * time.Millisecond},
		{Name: "min above max", Config: map[string]any{"min": 3, "max": 1}, WantErrorPaths: []string{"max"}},
		{Name: "whole block", Config: `comment = "reject"`, WantErrorPaths: []string{""}},
	}
}

func ptr[T any](v T) *T { return &v }

func TestStagePassesACorrectStage(t *testing.T) {
	set, runs := clipSet(flaws{})
	errs := suiteErrors(t, func(tb testing.TB) { sdktest.TestStage(tb, set, "clip", clipCases(t)...) })
	if len(errs) > 0 {
		t.Fatalf("the suite fails a correct stage:\n%s", strings.Join(errs, "\n"))
	}
	// The plain run and the bad input run of each of the four valid cases
	// at least; the cancellation runs may be cancelled before the stage
	// starts.
	if got, least := runs.Load(), int64(4*2); got < least {
		t.Errorf("the stage ran %d times, want at least %d: some check did not run it", got, least)
	}
}

// TestStageFailsABrokenStage is the suite's own proof: each flaw must make
// it report the check that catches it, and only the flawed stage fails.
func TestStageFailsABrokenStage(t *testing.T) {
	tests := []struct {
		name  string
		flaws flaws
		cases func(t *testing.T) []sdktest.Case
		// want are substrings that must each appear in some error.
		want []string
	}{
		{name: "leaks the batches it builds", flaws: flaws{leakOutput: true},
			want: []string{"clip/hcl: leak: after run, 256 bytes of Arrow memory are still allocated on the plugin side: the stage did not release a batch it built or retained", "ARROW_CHECKED_MAX_RETAINED_FRAMES"}},
		{name: "leaks a batch when cancelled", flaws: flaws{leakOnCancel: true},
			want: []string{"clip/paused: leak: after cancel while working, 128 bytes", "clip/hcl: leak: after cancel while reading, 128 bytes", "clip/empty input: leak: after cancel while reading"}},
		{name: "ignores cancellation", flaws: flaws{ignoreCancel: true},
			cases: func(t *testing.T) []sdktest.Case {
				return []sdktest.Case{{Name: "slow", Inputs: map[string][]arrow.RecordBatch{"input": xBatches(t, []float64{1})}, CancelWithin: 300 * time.Millisecond}}
			},
			want: []string{"clip/slow: cancel: cancel while working: the stage's Run had not returned 300ms after its context was cancelled", "clip/slow: cancel: cancel while reading"}},
		{name: "emits the wrong schema", flaws: flaws{wrongSchema: true},
			want: []string{"clip/hcl: schema: an output batch does not match its port's declared schema", "missing columns x (float64)"}},
		{name: "writes to stdout", flaws: flaws{printStdout: true},
			want: []string{"clip: stdout: the stage wrote", `"clip: starting\n`}},
		{name: "reports config errors without a path", flaws: flaws{pathless: true},
			want: []string{"clip/min above max: diagnostics: Configure: no error diagnostic at max; got:\n  Invalid configuration: min is above max\n(a diagnostic without a path points at the whole block: build config errors with sdk.AttrError",
				"clip/min above max: diagnostics: Run: no error diagnostic at max"}},
		{name: "reports config errors at an undeclared path", flaws: flaws{wrongPath: true},
			want: []string{`clip/min above max: diagnostics: Configure: error diagnostic "range.max: Empty range: max is below min." has path range.max, which starts with no declared attribute or block`}},
		{name: "panics on a second Close", flaws: flaws{closePanics: true},
			want: []string{"clip/hcl: close: Close call 2 panicked: close of closed channel\n", "(*clip).Close", "conformance_test.go:"}},
		{name: "panics on input without its columns", flaws: flaws{badInputPanics: true},
			want: []string{`clip/hcl: bad input: bad input on port "input": the stage panicked instead of returning an error`}},
		{name: "reports more done than total", flaws: flaws{overProgress: true},
			want: []string{"clip/hcl: progress: progress Done=3 Total=2"}},
		{name: "has no description", flaws: flaws{noDescription: true},
			want: []string{"clip: describe: the stage kind has no description"}},
		{name: "requires its resume port", flaws: flaws{requiredResume: true},
			want: []string{`clip: describe: Resume.Input "resume" must be optional`}},
		{name: "fails a run the case wants to succeed", flaws: flaws{fakeErrorOnBigX: true},
			want: []string{"clip/hcl: run: stage clip.sdktest_", "20 is too big"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, _ := clipSet(tc.flaws)
			cases := clipCases
			if tc.cases != nil {
				cases = tc.cases
			}
			errs := suiteErrors(t, func(tb testing.TB) { sdktest.TestStage(tb, set, "clip", cases(t)...) })
			all := strings.Join(errs, "\n")
			t.Logf("the suite reported:\n%s", all)
			if len(errs) == 0 {
				t.Fatal("the suite passes the broken stage")
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("no error contains %q; the suite reported:\n%s", w, all)
				}
			}
		})
	}
}

func TestStageReportsNameClashes(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("clash"))
	sdk.Register(set, "clash", sdk.StageInfo{Description: "Clashes.", Inputs: []sdk.Port{{Name: "input"}}},
		func(clashConfig) (sdk.Stage, error) { return nil, errors.New("never built") })
	errs := strings.Join(suiteErrors(t, func(tb testing.TB) { sdktest.TestStage(tb, set, "clash", sdktest.Case{}) }), "\n")
	for _, want := range []string{
		`clash: describe: config attribute "input" has the name of an input port`,
		`clash: describe: config attribute "timeout" is reserved by the host`,
		`clash: describe: config attribute "pass_env" is reserved by the host`,
		`clash: describe: config attribute "memory_limit" is reserved by the host`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("no error contains %q; the suite reported:\n%s", want, errs)
		}
	}
}

func TestStageReportsMisuse(t *testing.T) {
	set, _ := clipSet(flaws{})
	in := xBatches(t, []float64{1})
	tests := []struct {
		name  string
		kind  string
		cases []sdktest.Case
		want  string
	}{
		{name: "unknown kind", kind: "clamp", cases: []sdktest.Case{{}}, want: `clamp: describe: the set has no stage kind "clamp" (it has clip)`},
		{name: "no cases", kind: "clip", want: "clip: cases: no cases"},
		{name: "only invalid configs", kind: "clip", cases: []sdktest.Case{{Config: map[string]any{"min": 3, "max": 1}, WantErrorPaths: []string{"max"}}},
			want: "clip: cases: every case has an invalid config"},
		{name: "typo in config", kind: "clip", cases: []sdktest.Case{{Name: "typo", Config: map[string]any{"maxx": 3}}},
			want: "clip/typo: config: config sets maxx, which the stage does not declare (it declares comment, max, min, pause)"},
		{name: "bad HCL", kind: "clip", cases: []sdktest.Case{{Name: "hcl", Config: `min = "low"`}},
			want: "clip/hcl: config: config HCL: "},
		{name: "undeclared port", kind: "clip", cases: []sdktest.Case{{Name: "port", Inputs: map[string][]arrow.RecordBatch{"data": in}}},
			want: `clip/port: config: the case feeds input port "data", which the stage does not declare`},
		{name: "valid config said invalid", kind: "clip", cases: []sdktest.Case{{Name: "fine", Config: map[string]any{"min": 1}, WantErrorPaths: []string{"min"}}},
			want: "clip/fine: diagnostics: Configure accepts a config the case says is invalid (want errors at min)"},
		{name: "valid run said failing", kind: "clip", cases: []sdktest.Case{{Name: "fine", Inputs: map[string][]arrow.RecordBatch{"input": in}, WantRunError: true}},
			want: "clip/fine: run: the run succeeded, but the case wants it to fail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := suiteErrors(t, func(tb testing.TB) { sdktest.TestStage(tb, set, tc.kind, tc.cases...) })
			all := strings.Join(errs, "\n")
			if !strings.Contains(all, tc.want) {
				t.Errorf("no error contains %q; the suite reported:\n%s", tc.want, all)
			}
		})
	}
}

// A case may expect a run to fail on its input: that is a pass.
func TestStageAcceptsAnExpectedRunError(t *testing.T) {
	set, _ := clipSet(flaws{fakeErrorOnBigX: true})
	cases := []sdktest.Case{{Name: "too big", Inputs: map[string][]arrow.RecordBatch{"input": xBatches(t, []float64{1, 200})}, WantRunError: true}}
	if errs := suiteErrors(t, func(tb testing.TB) { sdktest.TestStage(tb, set, "clip", cases...) }); len(errs) > 0 {
		t.Errorf("the suite fails an expected run error:\n%s", strings.Join(errs, "\n"))
	}
}

func TestConnectCloseReportsLeaks(t *testing.T) {
	set, _ := clipSet(flaws{leakOutput: true})
	p, err := sdktest.Connect(set)
	if err != nil {
		t.Fatal(err)
	}
	in := sdktest.Table(xSchema, xBatches(t, []float64{1, 2})...)
	defer in.Release()
	_, err = p.Run(context.Background(), stagehost.RunRequest{
		Kind: "clip", Config: cty.EmptyObjectVal,
		Inputs: map[string]array.RecordReader{"input": in},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Close()
	if err == nil || !strings.Contains(err.Error(), "still allocated on the plugin side") {
		t.Errorf("Close = %v, want a leak on the plugin side", err)
	}
	if again := p.Close(); again == nil {
		t.Error("a second Close forgets the leak")
	}
}
