package sdktest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/internal/wire"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

// Case is one configuration of a stage kind for TestStage: a config and the
// data to feed it.
type Case struct {
	// Name labels the case's errors (default "case N").
	Name string
	// Config is the stage block's body, in any of these forms:
	//   - nil: an empty body;
	//   - a string of HCL, the body as it would appear in a pipeline file
	//     (constants only), decoded against the described schema as the
	//     host decodes it;
	//   - a cty.Value, sent as is;
	//   - a struct with `hcl` tags, such as the stage's own config type
	//     (nil pointers and slices stay unset), or a map[string]any.
	Config any
	// Inputs holds the batches sent on each input port; a port left out is
	// not connected, a port with no batches is connected and empty. The
	// suite does not take ownership: release the batches after TestStage
	// returns.
	Inputs map[string][]arrow.RecordBatch
	// WantErrorPaths marks a config the stage must reject: each path
	// (dot-separated, as for sdk.AttrError: "budget.max_wall") must carry
	// an error diagnostic; "" stands for a diagnostic about the whole block,
	// such as "set a or b". The suite then checks the rejection instead of
	// running the stage.
	WantErrorPaths []string
	// WantRunError marks a valid config whose run must fail, such as one
	// whose inputs the stage cannot use: the suite checks that it fails
	// with an error (not a panic) and releases what it held.
	WantRunError bool

	// Timeout bounds each run of the case (default 2 minutes).
	Timeout time.Duration
	// CancelAfter is how long after the plugin has started a run the
	// cancellation checks cancel it at the latest (default 20ms); they
	// cancel earlier at the stage's first output batch or progress event,
	// and, with inputs that never end, once the inputs are sent.
	CancelAfter time.Duration
	// CancelWithin is how soon after cancellation the stage's Run must have
	// returned (default 5s).
	CancelWithin time.Duration
}

func (c Case) timeout() time.Duration      { return orDefault(c.Timeout, 2*time.Minute) }
func (c Case) cancelAfter() time.Duration  { return orDefault(c.CancelAfter, 20*time.Millisecond) }
func (c Case) cancelWithin() time.Duration { return orDefault(c.CancelWithin, 5*time.Second) }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// TestStage is the conformance suite of a stage kind, in the manner of
// testing/fstest.TestFS: it runs every check and reports every violation
// through t.Errorf, each labelled with the case and the check
// ("filter/keeps rows: leak: ..."). It serves set in process through the
// real protocol (go-plugin test mode, checked allocators on both sides),
// once per check, so that one check's failure cannot hide another's.
//
// Checks, suite-wide:
//   - describe: the kind is declared, has a description, unique port
//     names, decodable port schemas, Loop and Resume ports that exist, a
//     config schema with an implied type and no attribute named like an
//     input port or a host-reserved attribute (plugin, timeout, ...); its
//     description survives a JSON round trip and is the same over the wire
//     as in process.
//   - stdout: nothing is written to stdout, which belongs to go-plugin's
//     handshake in a real plugin process.
//
// For each case with a valid config:
//   - configure: the host's Configure call accepts it;
//   - run: the stage runs to completion without error (with an error but
//     no panic when WantRunError is set);
//   - schema: every batch on a port with a declared schema has each
//     declared column with its declared type;
//   - rows: the rows the plugin counts are the rows the host received;
//   - progress: progress events have 0 <= Done <= Total (when Total > 0);
//   - leak: once the stage has returned, every batch it allocated or
//     retained through sdk.Allocator and its inputs is released, and so is
//     everything on the host side;
//   - cancel: cancelled mid-run (at its first output or progress event, or
//     CancelAfter into the run), and again while waiting on inputs that
//     never end, the stage returns within CancelWithin and releases its
//     batches;
//   - bad input: fed a batch lacking the declared columns of an input port,
//     it fails (or copes) without panicking and without leaking;
//   - close: for a stage implementing sdk.Closer, Close twice in a row
//     neither panics nor hangs.
//
// For each case with WantErrorPaths:
//   - diagnostics: Configure reports an error diagnostic at every wanted
//     attribute path (which the host turns into the attribute's source
//     range); every error diagnostic has a summary, and a path, when it
//     has one, that starts with a declared attribute or block; a Run with
//     the config fails as a config error with the same diagnostics, and
//     leaks nothing.
//
// A stage should build its batches with sdk.Allocator(ctx), so that the leak
// checks see them. Input batches are views of the received messages' bytes,
// which Go's collector frees: retaining one without releasing it is not a
// leak the allocator can see (nor one that holds memory for long). While it runs, TestStage replaces os.Stdout and so holds
// a process-wide lock: two TestStage calls never overlap.
func TestStage(t testing.TB, set *sdk.Set, kind string, cases ...Case) {
	t.Helper()
	s := &suite{t: t, set: set, kind: kind}
	restore, err := captureStdout()
	if err != nil {
		t.Errorf("%s: stdout: cannot watch stdout: %v", kind, err)
	} else {
		defer func() {
			if out := restore(); len(out) > 0 {
				s.errorf("", "stdout", "the stage wrote %d bytes to stdout, which belongs to go-plugin's handshake (log with sdk.Logger instead): %q", len(out), truncate(string(out), 200))
			}
		}()
	}
	desc := s.checkDescribe()
	if desc == nil {
		return
	}
	if len(cases) == 0 {
		s.errorf("", "cases", "no cases: give at least one Case with a valid config")
		return
	}
	valid := 0
	for i, c := range cases {
		if c.Name == "" {
			c.Name = fmt.Sprintf("case %d", i+1)
		}
		if len(c.WantErrorPaths) == 0 {
			valid++
		}
		s.checkCase(desc, c)
	}
	if valid == 0 {
		s.errorf("", "cases", "every case has an invalid config, so nothing was run: add a Case with a valid config")
	}
}

type suite struct {
	t    testing.TB
	set  *sdk.Set
	kind string
	runs atomic.Int64
}

func (s *suite) errorf(caseName, check, format string, args ...any) {
	s.t.Helper()
	label := s.kind
	if caseName != "" {
		label += "/" + caseName
	}
	s.t.Errorf("%s: %s: %s", label, check, fmt.Sprintf(format, args...))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// harness is one in-process plugin with checked allocators and a watch on
// the plugin's stage spans, which end when the stage's Run (and Close) has
// returned: the plugin-side signal that the host's view of a cancelled run
// cannot give, since the host stops waiting as soon as it cancels.
type harness struct {
	p                  *Plugin
	pluginMem, hostMem *memory.CheckedAllocator
	spans              *spanWatch
	tp                 *sdktrace.TracerProvider
}

func (s *suite) start() *harness {
	s.t.Helper()
	h := &harness{
		pluginMem: memory.NewCheckedAllocator(memory.NewGoAllocator()),
		hostMem:   memory.NewCheckedAllocator(memory.NewGoAllocator()),
		spans:     newSpanWatch(),
	}
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(h.spans))
	h.p = Start(s.t, s.set, WithAllocators(h.pluginMem, h.hostMem), WithTracerProvider(h.tp))
	return h
}

// stop ends the harness early: a stage that ignored cancellation may still
// be running, and must not hold the next check's resources.
func (h *harness) stop() {
	_ = h.p.shutdown()
	_ = h.tp.Shutdown(context.Background())
}

// spanWatch is a span processor that signals the start and the end of
// each stage span, found by its "stage" attribute (the stage address of the
// run). The wire names the span of a run "stage KIND" and starts it once it
// has the run's first message (sdk/internal/wire).
type spanWatch struct {
	mu      sync.Mutex
	started map[string]chan struct{}
	ended   map[string]chan struct{}
}

var _ sdktrace.SpanProcessor = (*spanWatch)(nil)

func newSpanWatch() *spanWatch {
	return &spanWatch{started: map[string]chan struct{}{}, ended: map[string]chan struct{}{}}
}

func (w *spanWatch) get(m map[string]chan struct{}, stage string) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := m[stage]
	if !ok {
		c = make(chan struct{})
		m[stage] = c
	}
	return c
}

// startedCh is closed when the run of stage has started in the plugin.
func (w *spanWatch) startedCh(stage string) chan struct{} { return w.get(w.started, stage) }

// ch is closed when the stage's Run (and Close) has returned.
func (w *spanWatch) ch(stage string) chan struct{} { return w.get(w.ended, stage) }

func (w *spanWatch) signal(m map[string]chan struct{}, sp sdktrace.ReadOnlySpan) {
	if !strings.HasPrefix(sp.Name(), "stage ") {
		return
	}
	for _, a := range sp.Attributes() {
		if a.Key == "stage" {
			c := w.get(m, a.Value.AsString())
			w.mu.Lock()
			select {
			case <-c:
			default:
				close(c)
			}
			w.mu.Unlock()
		}
	}
}

func (w *spanWatch) OnStart(_ context.Context, sp sdktrace.ReadWriteSpan) { w.signal(w.started, sp) }
func (w *spanWatch) OnEnd(sp sdktrace.ReadOnlySpan)                       { w.signal(w.ended, sp) }
func (w *spanWatch) Shutdown(context.Context) error                       { return nil }
func (w *spanWatch) ForceFlush(context.Context) error                     { return nil }

// checkDescribe checks the kind's description and returns it, or nil when
// the kind is not served at all.
func (s *suite) checkDescribe() *describe.StageDescription {
	s.t.Helper()
	local := s.set.Describe()
	desc := local.Stage(s.kind)
	if desc == nil {
		kinds := make([]string, 0, len(local.Stages))
		for _, st := range local.Stages {
			kinds = append(kinds, st.Kind)
		}
		s.errorf("", "describe", "the set has no stage kind %q (it has %s)", s.kind, strings.Join(kinds, ", "))
		return nil
	}
	js, err := json.Marshal(local)
	if err != nil {
		s.errorf("", "describe", "the description does not marshal to JSON: %v", err)
	} else {
		var back describe.PluginDescription
		if err := json.Unmarshal(js, &back); err != nil {
			s.errorf("", "describe", "the description's JSON does not unmarshal: %v", err)
		} else if js2, _ := json.Marshal(&back); !bytes.Equal(js, js2) {
			s.errorf("", "describe", "the description changes in a JSON round trip:\n%s", firstDiff(js, js2))
		}
	}
	h := s.start()
	remote, err := h.p.Describe(context.Background())
	h.stop()
	if err != nil {
		s.errorf("", "describe", "Describe over the wire: %v", err)
	} else if rjs, _ := json.Marshal(remote); !bytes.Equal(js, rjs) {
		s.errorf("", "describe", "the description over the wire differs from the one in process:\n%s", firstDiff(js, rjs))
	}
	if local.ProtocolVersion != sdk.ProtocolVersion {
		s.errorf("", "describe", "protocol version %d, but this SDK speaks %d", local.ProtocolVersion, sdk.ProtocolVersion)
	}
	if strings.TrimSpace(desc.Description) == "" {
		s.errorf("", "describe", "the stage kind has no description: `sweetspot plugins describe` would show users nothing")
	}
	if _, err := desc.Config.ImpliedType(); err != nil {
		s.errorf("", "describe", "the config schema has no implied type: %v", err)
	}
	inputs := s.checkPorts("input", desc.Inputs)
	outputs := s.checkPorts("output", desc.Outputs)
	var names []string
	for _, a := range desc.Config.Attributes {
		names = append(names, a.Name)
	}
	for _, b := range desc.Config.Blocks {
		names = append(names, b.Name)
	}
	for _, n := range names {
		if _, ok := inputs[n]; ok {
			s.errorf("", "describe", "config attribute %q has the name of an input port: in a stage block, %s = ... connects the port", n, n)
		}
		if slices.Contains(sdk.HostAttributes, n) {
			s.errorf("", "describe", "config attribute %q is reserved by the host, which reads it from every stage block and never passes it on", n)
		}
	}
	if l := desc.Loop; l != nil {
		if _, ok := outputs[l.DecisionPort]; !ok {
			s.errorf("", "describe", "Loop.DecisionPort %q is not an output port", l.DecisionPort)
		} else if sc := outputs[l.DecisionPort]; sc != nil {
			if idx := sc.FieldIndices("status"); len(idx) == 0 || !arrow.TypeEqual(sc.Field(idx[0]).Type, arrow.BinaryTypes.String) {
				s.errorf("", "describe", "the loop's decision port %q must declare a utf8 status column", l.DecisionPort)
			}
		}
		if _, ok := outputs[l.ProposalsPort]; !ok {
			s.errorf("", "describe", "Loop.ProposalsPort %q is not an output port", l.ProposalsPort)
		}
	}
	if r := desc.Resume; r != nil {
		if _, ok := outputs[r.Output]; !ok {
			s.errorf("", "describe", "Resume.Output %q is not an output port", r.Output)
		}
		if _, ok := inputs[r.Input]; !ok {
			s.errorf("", "describe", "Resume.Input %q is not an input port", r.Input)
		} else {
			for _, p := range desc.Inputs {
				if p.Name == r.Input && !p.Optional {
					s.errorf("", "describe", "Resume.Input %q must be optional: only a resumed run connects it", r.Input)
				}
			}
		}
	}
	return desc
}

// checkPorts checks one side's ports and returns their decoded schemas.
func (s *suite) checkPorts(side string, ports []describe.PortDescription) map[string]*arrow.Schema {
	s.t.Helper()
	out := map[string]*arrow.Schema{}
	for _, p := range ports {
		if p.Name == "" {
			s.errorf("", "describe", "an %s port has no name", side)
			continue
		}
		if _, dup := out[p.Name]; dup {
			s.errorf("", "describe", "%s port %q is declared twice", side, p.Name)
			continue
		}
		sc, err := p.PortSchema()
		if err != nil {
			s.errorf("", "describe", "%s port %q: schema does not decode: %v", side, p.Name, err)
		}
		out[p.Name] = sc
	}
	return out
}

// firstDiff shows where two JSON documents part.
func firstDiff(a, b []byte) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	lo := max(0, i-60)
	return fmt.Sprintf("  at byte %d\n  want …%s\n  got  …%s", i, a[lo:min(len(a), i+60)], b[lo:min(len(b), i+60)])
}

// checkCase runs the checks of one case.
func (s *suite) checkCase(desc *describe.StageDescription, c Case) {
	s.t.Helper()
	cfg, err := ConfigValue(desc.Config, c.Config)
	if err != nil {
		s.errorf(c.Name, "config", "%v", err)
		return
	}
	declaredIn := map[string]describe.PortDescription{}
	for _, p := range desc.Inputs {
		declaredIn[p.Name] = p
	}
	for port := range c.Inputs {
		if _, ok := declaredIn[port]; !ok {
			s.errorf(c.Name, "config", "the case feeds input port %q, which the stage does not declare", port)
			return
		}
	}
	if len(c.WantErrorPaths) > 0 {
		s.checkInvalid(desc, c, cfg)
		return
	}
	s.checkValid(desc, c, cfg)
}

func diagText(d sdk.Diagnostic) string {
	t := d.Summary
	if len(d.Path) > 0 {
		t = strings.Join(d.Path, ".") + ": " + t
	}
	if d.Detail != "" {
		t += ": " + d.Detail
	}
	return t
}

func (s *suite) checkValid(desc *describe.StageDescription, c Case, cfg cty.Value) {
	s.t.Helper()
	ctx := context.Background()

	h := s.start()
	diags, err := h.p.Configure(ctx, s.kind, cfg)
	if err != nil {
		s.errorf(c.Name, "configure", "%v", err)
	}
	for _, d := range diags {
		if d.Severity == sdk.SeverityError {
			s.errorf(c.Name, "configure", "a valid config is rejected: %s", diagText(d))
		}
		if strings.TrimSpace(d.Summary) == "" {
			s.errorf(c.Name, "configure", "a diagnostic has no summary: %+v", d)
		}
	}
	if sdk.Diagnostics(diags).HasErrors() {
		h.stop()
		return
	}
	s.plainRun(h, desc, c, cfg)
	h.stop()

	s.cancelRun(desc, c, cfg, false)
	if len(c.Inputs) > 0 {
		s.cancelRun(desc, c, cfg, true)
	}
	for _, p := range desc.Inputs {
		if _, fed := c.Inputs[p.Name]; !fed {
			continue
		}
		if sc, _ := p.PortSchema(); sc != nil && sc.NumFields() > 0 {
			s.badInputRun(desc, c, cfg, p.Name)
		}
	}
	s.checkClose(c, cfg)
}

// stageName gives each run a stage address of its own, by which its span
// is found.
func (s *suite) stageName() string {
	return fmt.Sprintf("%s.sdktest_%d", s.kind, s.runs.Add(1))
}

// plainRun runs the case to completion and checks what comes out.
func (s *suite) plainRun(h *harness, desc *describe.StageDescription, c Case, cfg cty.Value) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()
	col := NewCollector()
	var (
		mu       sync.Mutex
		progress []sdk.Progress
	)
	stage := s.stageName()
	req := stagehost.RunRequest{
		Kind: s.kind, Stage: stage, RunID: "sdktest", Config: cfg,
		Inputs:  feeds(ctx, desc, c.Inputs, false, nil),
		Outputs: map[string]func(arrow.RecordBatch) error{},
		OnProgress: func(p sdk.Progress) {
			mu.Lock()
			progress = append(progress, p)
			mu.Unlock()
		},
	}
	for _, p := range desc.Outputs {
		req.Outputs[p.Name] = col.Port(p.Name)
	}
	res, err := h.p.Run(ctx, req)
	defer col.Release()

	switch {
	case err != nil && ctx.Err() != nil:
		s.errorf(c.Name, "run", "did not finish within %s: %v", c.timeout(), err)
	case err != nil && isPanic(err):
		s.errorf(c.Name, "run", "the stage panicked: %v", err)
	case errors.Is(err, sdk.ErrSchemaMismatch):
		s.errorf(c.Name, "schema", "an output batch does not match its port's declared schema: %v", err)
	case err != nil && !c.WantRunError:
		s.errorf(c.Name, "run", "%v", err)
	case err == nil && c.WantRunError:
		s.errorf(c.Name, "run", "the run succeeded, but the case wants it to fail")
	}

	for _, p := range desc.Outputs {
		declared, _ := p.PortSchema()
		for i, b := range col.Batches[p.Name] {
			if gap := sdk.CheckSchema(declared, b.Schema()); !gap.OK() {
				s.errorf(c.Name, "schema", "output port %q, batch %d: %s", p.Name, i, strings.Join(gap.Problems(), "; "))
				break
			}
		}
		if res != nil {
			if got, want := col.Rows(p.Name), res.RowsOut[p.Name]; got != want {
				s.errorf(c.Name, "rows", "output port %q: the plugin counted %d rows, the host received %d", p.Name, want, got)
			}
		}
	}
	mu.Lock()
	for _, p := range progress {
		if p.Done < 0 || p.Total < 0 || (p.Total > 0 && p.Done > p.Total) {
			s.errorf(c.Name, "progress", "progress Done=%d Total=%d: want 0 <= Done <= Total", p.Done, p.Total)
			break
		}
	}
	mu.Unlock()
	col.Release()
	if ctx.Err() == nil {
		s.checkLeaks(h, c, "run", stage, c.timeout())
	}
}

func isPanic(err error) bool {
	return strings.Contains(err.Error(), wire.ErrPanic.Error())
}

// checkLeaks waits for the stage of a run to have returned, then for both
// allocators to be back to zero.
func (s *suite) checkLeaks(h *harness, c Case, check, stage string, wait time.Duration) {
	s.t.Helper()
	select {
	case <-h.spans.ch(stage):
	case <-time.After(wait):
		s.errorf(c.Name, check, "the stage's run had not returned %s after the host's ended", wait)
		return
	}
	// Buffers may still be on their way back from the gRPC transport for a
	// moment after the stage returns.
	deadline := time.Now().Add(250 * time.Millisecond)
	for time.Now().Before(deadline) && (h.pluginMem.CurrentAlloc() != 0 || h.hostMem.CurrentAlloc() != 0) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, side := range []struct {
		name string
		mem  *memory.CheckedAllocator
	}{{"plugin", h.pluginMem}, {"host", h.hostMem}} {
		if n := side.mem.CurrentAlloc(); n != 0 {
			var sites leakSites
			side.mem.AssertSize(&sites, 0)
			who := "the stage did not release a batch it built or retained"
			if side.name == "host" {
				who = "the host side did not release a batch"
			}
			s.errorf(c.Name, "leak", "after %s, %d bytes of Arrow memory are still allocated on the %s side: %s%s", check, n, side.name, who, sites.String())
		}
	}
}

// leakSites collects the allocation sites AssertSize reports. They name
// the stage's code only when ARROW_CHECKED_MAX_RETAINED_FRAMES asked the
// checked allocator to keep stacks; otherwise they name arrow's builders,
// and a hint says how to get more.
type leakSites struct{ sites []string }

func (l *leakSites) Helper() {}
func (l *leakSites) Errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.HasPrefix(msg, "LEAK") {
		l.sites = append(l.sites, msg)
	}
}

func (l *leakSites) String() string {
	if os.Getenv("ARROW_CHECKED_MAX_RETAINED_FRAMES") == "" {
		return " (run the test with ARROW_CHECKED_MAX_RETAINED_FRAMES=20 to see where the leaked buffers were allocated)"
	}
	const most = 3
	var b strings.Builder
	for _, site := range l.sites[:min(most, len(l.sites))] {
		b.WriteString("\n")
		b.WriteString(site)
	}
	if len(l.sites) > most {
		fmt.Fprintf(&b, "\n(and %d more)", len(l.sites)-most)
	}
	return b.String()
}

// cancelRun cancels a run early and checks that the stage returns within
// CancelWithin. With endless set, every input port stays open after its
// batches, so the stage is cancelled while it waits for more.
func (s *suite) cancelRun(desc *describe.StageDescription, c Case, cfg cty.Value, endless bool) {
	s.t.Helper()
	check := "cancel while working"
	if endless {
		check = "cancel while reading"
	}
	h := s.start()
	defer h.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	trigger := make(chan struct{}, 1)
	fire := func() {
		select {
		case trigger <- struct{}{}:
		default:
		}
	}
	var pending atomic.Int64
	pending.Store(int64(len(c.Inputs)))
	drained := func() {
		if pending.Add(-1) == 0 {
			// Time for the stage to take in what was sent and block
			// waiting for more.
			time.AfterFunc(50*time.Millisecond, fire)
		}
	}
	stage := s.stageName()
	req := stagehost.RunRequest{
		Kind: s.kind, Stage: stage, RunID: "sdktest", Config: cfg,
		Inputs:     feeds(ctx, desc, c.Inputs, endless, drained),
		Outputs:    map[string]func(arrow.RecordBatch) error{},
		OnProgress: func(sdk.Progress) { fire() },
	}
	for _, p := range desc.Outputs {
		req.Outputs[p.Name] = func(arrow.RecordBatch) error { fire(); return nil }
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.p.Run(ctx, req)
		done <- err
	}()
	// Cancelling before the plugin has the run would test nothing (and
	// find no stage to wait for): the clock starts with the run.
	select {
	case <-h.spans.startedCh(stage):
	case err := <-done:
		select {
		case <-h.spans.startedCh(stage):
			// Started and already over: the checks below see it so.
			done <- err
		default:
			s.errorf(c.Name, "cancel", "%s: the run ended before the plugin started it: %v", check, err)
			return
		}
	case <-time.After(c.timeout()):
		s.errorf(c.Name, "cancel", "%s: the plugin had not started the run after %s", check, c.timeout())
		return
	}
	timer := time.NewTimer(c.cancelAfter())
	defer timer.Stop()
	select {
	case <-trigger:
	case <-timer.C:
	case <-h.spans.ch(stage):
		// Finished before it could be cancelled: nothing to stop.
	}
	cancel()
	select {
	case <-h.spans.ch(stage):
	case <-time.After(c.cancelWithin()):
		s.errorf(c.Name, "cancel", "%s: the stage's Run had not returned %s after its context was cancelled: it must watch ctx.Done() (or ctx.Err()) in long loops and while blocked", check, c.cancelWithin())
		return
	}
	select {
	case err := <-done:
		if err != nil && isPanic(err) {
			s.errorf(c.Name, "cancel", "%s: the stage panicked: %v", check, err)
		}
	case <-time.After(c.cancelWithin()):
		s.errorf(c.Name, "cancel", "%s: the host's Run had not returned %s after cancellation", check, c.cancelWithin())
		return
	}
	s.checkLeaks(h, c, check, stage, c.cancelWithin())
}

// badInputRun feeds port a batch without any of its declared columns.
func (s *suite) badInputRun(desc *describe.StageDescription, c Case, cfg cty.Value, port string) {
	s.t.Helper()
	check := fmt.Sprintf("bad input on port %q", port)
	h := s.start()
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()

	ib := array.NewInt64Builder(memory.DefaultAllocator)
	ib.AppendValues([]int64{1, 2, 3}, nil)
	col := ib.NewArray()
	ib.Release()
	bad := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "sdktest_unexpected", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 3)
	col.Release()
	defer bad.Release()

	inputs := map[string][]arrow.RecordBatch{}
	for p, bs := range c.Inputs {
		inputs[p] = bs
	}
	inputs[port] = []arrow.RecordBatch{bad}
	stage := s.stageName()
	req := stagehost.RunRequest{
		Kind: s.kind, Stage: stage, RunID: "sdktest", Config: cfg,
		Inputs:  feeds(ctx, desc, inputs, false, nil),
		Outputs: map[string]func(arrow.RecordBatch) error{},
	}
	_, err := h.p.Run(ctx, req)
	switch {
	case ctx.Err() != nil:
		s.errorf(c.Name, "bad input", "%s: did not finish within %s", check, c.timeout())
		return
	case err != nil && isPanic(err):
		s.errorf(c.Name, "bad input", "%s: the stage panicked instead of returning an error (sdk.InputError names the port and column): %v", check, err)
	}
	s.checkLeaks(h, c, check, stage, c.timeout())
}

// checkClose builds the stage in process and closes it twice.
func (s *suite) checkClose(c Case, cfg cty.Value) {
	s.t.Helper()
	st, diags := s.set.NewStage(s.kind, cfg)
	if diags.HasErrors() || st == nil {
		s.errorf(c.Name, "close", "building the stage in process: %v", diags)
		return
	}
	closer, ok := st.(sdk.Closer)
	if !ok {
		return
	}
	for i := 1; i <= 2; i++ {
		done := make(chan string, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					done <- fmt.Sprintf("panicked: %v%s", p, panicSite(debug.Stack()))
				}
			}()
			if err := closer.Close(context.Background()); err != nil {
				s.t.Logf("%s/%s: close: call %d returned %v", s.kind, c.Name, i, err)
			}
			done <- ""
		}()
		select {
		case msg := <-done:
			if msg != "" {
				s.errorf(c.Name, "close", "Close call %d %s", i, msg)
				return
			}
		case <-time.After(c.cancelWithin()):
			s.errorf(c.Name, "close", "Close call %d had not returned after %s", i, c.cancelWithin())
			return
		}
	}
}

// panicSite picks the function that panicked and its line out of a stack.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && i+2 < len(lines) {
			return "\n" + lines[i+2] + "\n" + lines[i+3]
		}
	}
	return ""
}

// checkInvalid checks that a config is rejected with useful diagnostics.
func (s *suite) checkInvalid(desc *describe.StageDescription, c Case, cfg cty.Value) {
	s.t.Helper()
	names := map[string]bool{}
	for _, a := range desc.Config.Attributes {
		names[a.Name] = true
	}
	for _, b := range desc.Config.Blocks {
		names[b.Name] = true
	}
	h := s.start()
	defer h.stop()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout())
	defer cancel()

	diags, err := h.p.Configure(ctx, s.kind, cfg)
	if err != nil {
		s.errorf(c.Name, "diagnostics", "Configure: %v", err)
		return
	}
	s.checkDiags(c, "Configure", diags, names)

	stage := s.stageName()
	_, err = h.p.Run(ctx, stagehost.RunRequest{
		Kind: s.kind, Stage: stage, RunID: "sdktest", Config: cfg,
		Inputs:  feeds(ctx, desc, c.Inputs, false, nil),
		Outputs: map[string]func(arrow.RecordBatch) error{},
	})
	var re *stagehost.RunError
	switch {
	case err == nil:
		s.errorf(c.Name, "diagnostics", "Run with the invalid config succeeded; it must fail as a config error")
	case !errors.As(err, &re) || re.Kind != stagehost.KindConfig:
		s.errorf(c.Name, "diagnostics", "Run with the invalid config failed, but not as a config error: %v", err)
	default:
		s.checkDiags(c, "Run", re.Diagnostics, names)
	}
	s.checkLeaks(h, c, "a run with an invalid config", stage, c.timeout())
}

func (s *suite) checkDiags(c Case, call string, diags sdk.Diagnostics, names map[string]bool) {
	s.t.Helper()
	if !diags.HasErrors() {
		s.errorf(c.Name, "diagnostics", "%s accepts a config the case says is invalid (want errors at %s)", call, strings.Join(c.WantErrorPaths, ", "))
		return
	}
	got := map[string]bool{}
	for _, d := range diags {
		if d.Severity != sdk.SeverityError {
			continue
		}
		if strings.TrimSpace(d.Summary) == "" {
			s.errorf(c.Name, "diagnostics", "%s: an error diagnostic has no summary: %s", call, diagText(d))
		}
		if len(d.Path) > 0 && !names[d.Path[0]] {
			s.errorf(c.Name, "diagnostics", "%s: error diagnostic %q has path %s, which starts with no declared attribute or block, so the host cannot point at it", call, diagText(d), strings.Join(d.Path, "."))
		}
		got[strings.Join(d.Path, ".")] = true
	}
	for _, want := range c.WantErrorPaths {
		if got[want] {
			continue
		}
		var have []string
		for _, d := range diags {
			have = append(have, diagText(d))
		}
		where := "at " + want
		if want == "" {
			where = "about the whole block (without a path)"
		}
		hint := ""
		if got[""] && want != "" {
			hint = "\n(a diagnostic without a path points at the whole block: build config errors with sdk.AttrError, or set Diagnostic.Path, so the host points at the attribute at fault)"
		}
		s.errorf(c.Name, "diagnostics", "%s: no error diagnostic %s; got:\n  %s%s", call, where, strings.Join(have, "\n  "), hint)
	}
}

// feeds returns a reader per input port of the case. With endless set, a
// reader that has given its batches calls drained and then blocks until
// ctx ends instead of ending the port.
func feeds(ctx context.Context, desc *describe.StageDescription, inputs map[string][]arrow.RecordBatch, endless bool, drained func()) map[string]array.RecordReader {
	out := map[string]array.RecordReader{}
	for port, bs := range inputs {
		var schema *arrow.Schema
		if len(bs) > 0 {
			schema = bs[0].Schema()
		} else {
			for _, p := range desc.Inputs {
				if p.Name == port {
					schema, _ = p.PortSchema()
				}
			}
		}
		if schema == nil {
			schema = arrow.NewSchema(nil, nil)
		}
		out[port] = &feedReader{ctx: ctx, schema: schema, batches: slices.Clone(bs), endless: endless, drained: drained}
	}
	return out
}

// feedReader reads a case's batches without taking ownership of them.
type feedReader struct {
	ctx     context.Context
	schema  *arrow.Schema
	batches []arrow.RecordBatch
	cur     arrow.RecordBatch
	endless bool
	drained func()
	once    sync.Once
}

var _ array.RecordReader = (*feedReader)(nil)

func (r *feedReader) Retain()                        {}
func (r *feedReader) Release()                       {}
func (r *feedReader) Schema() *arrow.Schema          { return r.schema }
func (r *feedReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch under its deprecated name.
func (r *feedReader) Record() arrow.RecordBatch { return r.cur }

// Err reports the cancellation that ended an endless reader: a nil error
// would tell the host the port ended cleanly, and the stage would see a
// complete input instead of a cancelled run.
func (r *feedReader) Err() error {
	if r.endless && len(r.batches) == 0 {
		return r.ctx.Err()
	}
	return nil
}

func (r *feedReader) Next() bool {
	if len(r.batches) > 0 {
		r.cur, r.batches = r.batches[0], r.batches[1:]
		return true
	}
	r.cur = nil
	if r.endless {
		if r.drained != nil {
			r.once.Do(r.drained)
		}
		<-r.ctx.Done()
	}
	return false
}

// stdoutMu serializes the suites that watch stdout: os.Stdout is global.
var stdoutMu sync.Mutex

// captureStdout points os.Stdout at a pipe until restore, which returns
// what was written.
func captureStdout() (restore func() []byte, err error) {
	stdoutMu.Lock()
	r, w, err := os.Pipe()
	if err != nil {
		stdoutMu.Unlock()
		return nil, err
	}
	orig := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(copied)
	}()
	return func() []byte {
		os.Stdout = orig
		_ = w.Close()
		<-copied
		_ = r.Close()
		stdoutMu.Unlock()
		return buf.Bytes()
	}, nil
}
