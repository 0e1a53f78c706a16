package report

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Port names the report reads. They are the contract of the evaluation,
// resize and requirements stages (DESIGN.md "Arrow tables between
// stages"); any stage that writes a port of that name is read, so a
// third-party evaluation or resize stage gets a report too.
const (
	portResults      = "results"
	portDecision     = "decision"
	portRequirements = "requirements"
)

// Quality metrics named by the decision table's metric column.
const (
	metricAccuracy = "accuracy"
	metricLoss     = "loss"
)

// frame is a table read column by column: numbers of any width as float64
// (NaN for null), strings and booleans as themselves. A column the stage did
// not write reads as NaN or "", so a report degrades instead of failing
// when an upstream stage adds or drops optional columns.
type frame struct {
	rows int
	num  map[string][]float64
	str  map[string][]string
}

func newFrame() *frame {
	return &frame{num: map[string][]float64{}, str: map[string][]string{}}
}

func (f *frame) f(name string, row int) float64 {
	if c, ok := f.num[name]; ok && row < len(c) {
		return c[row]
	}
	return math.NaN()
}

func (f *frame) s(name string, row int) string {
	if c, ok := f.str[name]; ok && row < len(c) {
		return c[row]
	}
	return ""
}

// appendBatch adds a batch's rows. Columns that appear in only some batches
// (files of rounds written by different stage versions) are padded.
func (f *frame) appendBatch(b arrow.RecordBatch) {
	n := int(b.NumRows())
	schema := b.Schema()
	seen := map[string]bool{}
	for i, field := range schema.Fields() {
		if seen[field.Name] {
			continue
		}
		seen[field.Name] = true
		col := b.Column(i)
		if vals, ok := numbers(col); ok {
			c, known := f.num[field.Name]
			if !known {
				c = nanSlice(f.rows)
			}
			f.num[field.Name] = append(c, vals...)
			continue
		}
		if vals, ok := texts(col); ok {
			c, known := f.str[field.Name]
			if !known {
				c = make([]string, f.rows)
			}
			f.str[field.Name] = append(c, vals...)
		}
	}
	f.rows += n
	for name, c := range f.num {
		if len(c) < f.rows {
			f.num[name] = append(c, nanSlice(f.rows-len(c))...)
		}
	}
	for name, c := range f.str {
		if len(c) < f.rows {
			f.str[name] = append(c, make([]string, f.rows-len(c))...)
		}
	}
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

// numbers converts a numeric or boolean column to float64, NaN for null.
func numbers(col arrow.Array) ([]float64, bool) {
	n := col.Len()
	out := make([]float64, n)
	var at func(i int) float64
	switch c := col.(type) {
	case *array.Float64:
		at = func(i int) float64 { return c.Value(i) }
	case *array.Float32:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Int64:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Int32:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Int16:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Int8:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Uint64:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Uint32:
		at = func(i int) float64 { return float64(c.Value(i)) }
	case *array.Boolean:
		at = func(i int) float64 {
			if c.Value(i) {
				return 1
			}
			return 0
		}
	default:
		return nil, false
	}
	for i := range n {
		if col.IsNull(i) {
			out[i] = math.NaN()
		} else {
			out[i] = at(i)
		}
	}
	return out, true
}

func texts(col arrow.Array) ([]string, bool) {
	n := col.Len()
	out := make([]string, n)
	switch c := col.(type) {
	case *array.String:
		for i := range n {
			if c.IsValid(i) {
				out[i] = c.Value(i)
			}
		}
	case *array.LargeString:
		for i := range n {
			if c.IsValid(i) {
				out[i] = c.Value(i)
			}
		}
	default:
		return nil, false
	}
	return out, true
}

// portFiles are one stage's files of one port, in round order.
type portFiles struct {
	stage string
	files []runstore.OutputFile
}

// findPort returns, per stage, the files of the named port. A round
// recorded twice (a resumed run) counts once: the last record wins.
func findPort(m *runstore.Manifest, port string) []portFiles {
	var out []portFiles
	for _, s := range m.Stages {
		byRound := map[int]runstore.OutputFile{}
		for _, o := range s.Outputs {
			if o.Port == port {
				byRound[o.Round] = o
			}
		}
		if len(byRound) == 0 {
			continue
		}
		pf := portFiles{stage: s.Addr}
		for _, o := range byRound {
			pf.files = append(pf.files, o)
		}
		sort.Slice(pf.files, func(i, j int) bool { return pf.files[i].Round < pf.files[j].Round })
		out = append(out, pf)
	}
	return out
}

// readFrame reads the files one by one, so rounds whose schemas differ
// (columns added by a newer stage version) still combine.
func readFrame(run *runstore.Run, files []runstore.OutputFile, mem memory.Allocator) (*frame, error) {
	f := newFrame()
	for _, o := range files {
		rd, err := runstore.OpenFiles([]string{run.Path(o.Path)}, mem)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", o.Path, err)
		}
		for rd.Next() {
			f.appendBatch(rd.RecordBatch())
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", o.Path, err)
		}
	}
	return f, nil
}

// data is everything the report shows, read from a run directory.
type data struct {
	manifest runstore.Manifest

	resultsStage  string
	trials        []trial
	decisionStage string
	rounds        []round
	req           *requirements

	// metric is the quality the charts plot: the decision's metric, or
	// accuracy, or loss when no decision was recorded.
	metric string
	// chosen is the last decision's chosen candidate, nil when none.
	chosen *trial
	// warnings are problems the reader met but could work around.
	warnings []string
}

// trial is one row of the results table.
type trial struct {
	ID, Family, Status, Error, Preprocess, Quantize string
	Round, Depth, Width                             int
	Params, Flops, LearningRate, PruneFraction      float64
	Accuracy, Loss, RMSE, R2                        float64
	LatencyP50, LatencyP95, Throughput              float64
	ModelBytes, PeakBytes, TrainSeconds, EpochsRun  float64
	row                                             int
}

// quality is the trial's value of the report's metric.
func (t *trial) quality(metric string) float64 {
	if metric == metricLoss {
		return t.Loss
	}
	return t.Accuracy
}

func (t *trial) ok() bool { return t.Status == "" || t.Status == "ok" }

// round is one row of the decision table.
type round struct {
	Round                            int
	Status, Action, Strategy, Chosen string
	Reason, Metric                   string
	Target, Measured                 float64
	Predicted, PredLo, PredHi        float64
	QInf, QInfLo, QInfHi             float64
	A, ALo, AHi                      float64
	Alpha, AlphaLo, AlphaHi          float64
	FitPoints                        float64
	FitRMSE, FitR2                   float64
	Trusted                          bool
	LatencyCoef, LatencyExp          float64
	BytesCoef, BytesExp              float64
	TrainCoef, TrainExp              float64
	BracketLo, BracketHi             float64
	TrialsUsed, TrialsLeft           float64
	Proposals                        float64
	Front                            []string
	Confidence                       float64
}

// hasFit reports whether the round carries a fitted quality curve.
func (r *round) hasFit() bool {
	return finite(r.QInf) && finite(r.A) && finite(r.Alpha)
}

// curve returns the fitted quality at n params in the metric's units. The
// resize stage fits q(N) = q∞ − A·N^(−α) on a higher-is-better scale and
// reports q∞ in the metric's units, so a loss curve falls towards q∞.
func (r *round) curve(n float64) float64 {
	return curveAt(r.Metric, r.QInf, r.A, r.Alpha, n)
}

func curveAt(metric string, qinf, a, alpha, n float64) float64 {
	if metric == metricLoss {
		return qinf + a*math.Pow(n, -alpha)
	}
	return qinf - a*math.Pow(n, -alpha)
}

// requirements is the requirements table's single row.
type requirements struct {
	Task, Metric                              string
	MinAccuracy, MaxLoss, MaxLatencyMs        float64
	MaxParams, MaxModelBytes, MaxTrainSeconds float64
	MaxTrials, MaxWallSeconds                 float64
	Rows, Features, Classes                   float64
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// load reads the tables of a run.
func load(run *runstore.Run, mem memory.Allocator) (*data, error) {
	d := &data{manifest: run.Manifest()}
	m := &d.manifest

	if err := d.loadDecisions(run, m, mem); err != nil {
		return nil, err
	}
	if err := d.loadResults(run, m, mem); err != nil {
		return nil, err
	}
	if err := d.loadRequirements(run, m, mem); err != nil {
		return nil, err
	}

	switch {
	case len(d.rounds) > 0 && d.rounds[len(d.rounds)-1].Metric != "":
		d.metric = d.rounds[len(d.rounds)-1].Metric
	case d.req != nil && (d.req.Task == "regression" || d.req.Metric == metricLoss):
		d.metric = metricLoss
	case d.anyTrial(func(t *trial) bool { return finite(t.Accuracy) }):
		d.metric = metricAccuracy
	default:
		d.metric = metricLoss
	}

	chosen := ""
	if len(d.rounds) > 0 {
		chosen = d.rounds[len(d.rounds)-1].Chosen
	}
	if chosen == "" && m.Decision != nil {
		chosen = m.Decision.Chosen
	}
	if chosen != "" {
		// The same candidate id may be trained in several rounds (a
		// re-evaluation); the latest measurement is the one decided on.
		for i := range d.trials {
			if d.trials[i].ID == chosen {
				d.chosen = &d.trials[i]
			}
		}
		if d.chosen == nil {
			d.warnings = append(d.warnings, fmt.Sprintf("the chosen candidate %s is not in the results table", chosen))
		}
	}
	return d, nil
}

func (d *data) anyTrial(pred func(*trial) bool) bool {
	for i := range d.trials {
		if pred(&d.trials[i]) {
			return true
		}
	}
	return false
}

func (d *data) loadDecisions(run *runstore.Run, m *runstore.Manifest, mem memory.Allocator) error {
	stages := findPort(m, portDecision)
	if len(stages) == 0 {
		return nil
	}
	pick := stages[len(stages)-1]
	if m.Decision != nil {
		for _, s := range stages {
			if s.stage == m.Decision.Stage {
				pick = s
			}
		}
	}
	if len(stages) > 1 {
		d.warnings = append(d.warnings, fmt.Sprintf("%d stages write a decision port; showing %s", len(stages), pick.stage))
	}
	f, err := readFrame(run, pick.files, mem)
	if err != nil {
		return fmt.Errorf("decision of %s: %w", pick.stage, err)
	}
	d.decisionStage = pick.stage
	for i := range f.rows {
		r := round{
			Round: int(f.f("round", i)), Status: f.s("status", i), Action: f.s("action", i),
			Strategy: f.s("strategy", i), Chosen: f.s("chosen_candidate_id", i),
			Reason: f.s("reason", i), Metric: f.s("metric", i),
			Target: f.f("target", i), Measured: f.f("chosen_measured", i),
			Predicted: f.f("predicted_accuracy", i), PredLo: f.f("predicted_lo", i), PredHi: f.f("predicted_hi", i),
			QInf: f.f("fit_q_inf", i), QInfLo: f.f("fit_q_inf_lo", i), QInfHi: f.f("fit_q_inf_hi", i),
			A: f.f("fit_a", i), ALo: f.f("fit_a_lo", i), AHi: f.f("fit_a_hi", i),
			Alpha: f.f("fit_alpha", i), AlphaLo: f.f("fit_alpha_lo", i), AlphaHi: f.f("fit_alpha_hi", i),
			FitPoints: f.f("fit_points", i), FitRMSE: f.f("fit_rmse", i), FitR2: f.f("fit_r2", i),
			Trusted:     f.f("fit_trusted", i) == 1,
			LatencyCoef: f.f("fit_latency_coef", i), LatencyExp: f.f("fit_latency_exp", i),
			BytesCoef: f.f("fit_bytes_coef", i), BytesExp: f.f("fit_bytes_exp", i),
			TrainCoef: f.f("fit_train_coef", i), TrainExp: f.f("fit_train_exp", i),
			BracketLo: f.f("bracket_lo_width", i), BracketHi: f.f("bracket_hi_width", i),
			TrialsUsed: f.f("trials_used", i), TrialsLeft: f.f("trials_left", i),
			Proposals: f.f("proposals", i), Confidence: f.f("confidence", i),
		}
		if r.Metric != metricLoss && r.Metric != metricAccuracy {
			// A third-party resize stage may name its metric otherwise;
			// only these two have a known direction, and a lower-is-
			// better name is the safer reading of anything with "loss"
			// or "error" in it.
			if l := strings.ToLower(r.Metric); strings.Contains(l, "loss") || strings.Contains(l, "error") || strings.Contains(l, "rmse") {
				r.Metric = metricLoss
			} else if r.Metric != "" {
				r.Metric = metricAccuracy
			}
		}
		if front := f.s("pareto_front", i); front != "" {
			r.Front = strings.Split(front, ",")
		}
		d.rounds = append(d.rounds, r)
	}
	sort.SliceStable(d.rounds, func(i, j int) bool { return d.rounds[i].Round < d.rounds[j].Round })
	return nil
}

func (d *data) loadResults(run *runstore.Run, m *runstore.Manifest, mem memory.Allocator) error {
	stages := findPort(m, portResults)
	if len(stages) == 0 {
		return nil
	}
	chosen := ""
	if m.Decision != nil {
		chosen = m.Decision.Chosen
	}
	var best *frame
	for _, s := range stages {
		f, err := readFrame(run, s.files, mem)
		if err != nil {
			return fmt.Errorf("results of %s: %w", s.stage, err)
		}
		// Several stages may evaluate (a baseline and the loop); the one
		// holding the chosen candidate is the one decided on, else the
		// largest.
		holds := chosen != "" && contains(f.str["candidate_id"], chosen)
		if best == nil || holds || (!contains(best.str["candidate_id"], chosen) && f.rows > best.rows) {
			best, d.resultsStage = f, s.stage
		}
	}
	if len(stages) > 1 {
		d.warnings = append(d.warnings, fmt.Sprintf("%d stages write a results port; showing %s", len(stages), d.resultsStage))
	}
	f := best
	for i := range f.rows {
		d.trials = append(d.trials, trial{
			ID: f.s("candidate_id", i), Family: f.s("family", i), Status: f.s("status", i), Error: f.s("error", i),
			Preprocess: f.s("preprocess", i), Quantize: f.s("quantize", i),
			Round: int(zeroNaN(f.f("round", i))), Depth: int(zeroNaN(f.f("depth", i))), Width: int(zeroNaN(f.f("width", i))),
			Params: f.f("params", i), Flops: f.f("flops", i), LearningRate: f.f("learning_rate", i), PruneFraction: f.f("prune_fraction", i),
			Accuracy: f.f("accuracy", i), Loss: f.f("loss", i), RMSE: f.f("rmse", i), R2: f.f("r2", i),
			LatencyP50: f.f("latency_p50_ms", i), LatencyP95: f.f("latency_p95_ms", i), Throughput: f.f("throughput_per_s", i),
			ModelBytes: f.f("model_bytes", i), PeakBytes: f.f("peak_bytes", i), TrainSeconds: f.f("train_seconds", i),
			EpochsRun: f.f("epochs_run", i), row: i,
		})
	}
	return nil
}

func (d *data) loadRequirements(run *runstore.Run, m *runstore.Manifest, mem memory.Allocator) error {
	stages := findPort(m, portRequirements)
	if len(stages) == 0 {
		return nil
	}
	s := stages[0]
	f, err := readFrame(run, s.files[len(s.files)-1:], mem)
	if err != nil {
		return fmt.Errorf("requirements of %s: %w", s.stage, err)
	}
	if f.rows == 0 {
		return nil
	}
	d.req = &requirements{
		Task: f.s("task", 0), Metric: f.s("metric", 0),
		MinAccuracy: f.f("min_accuracy", 0), MaxLoss: f.f("max_loss", 0),
		MaxLatencyMs: f.f("max_latency_ms", 0), MaxParams: f.f("max_params", 0),
		MaxModelBytes: f.f("max_model_bytes", 0), MaxTrainSeconds: f.f("max_train_seconds", 0),
		MaxTrials: f.f("max_trials", 0), MaxWallSeconds: f.f("max_wall_seconds", 0),
		Rows: f.f("n_rows", 0), Features: f.f("n_features", 0), Classes: f.f("n_classes", 0),
	}
	return nil
}

func zeroNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

func contains(s []string, v string) bool {
	if v == "" {
		return false
	}
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// target is the quality the run had to reach, in the metric's units, from
// the last decision, else the requirements; NaN when none.
func (d *data) target() float64 {
	for i := len(d.rounds) - 1; i >= 0; i-- {
		if finite(d.rounds[i].Target) {
			return d.rounds[i].Target
		}
	}
	if d.req != nil {
		if d.metric == metricLoss {
			return d.req.MaxLoss
		}
		return d.req.MinAccuracy
	}
	return math.NaN()
}

// lastFit is the last round with a fitted curve, nil when none.
func (d *data) lastFit() *round {
	for i := len(d.rounds) - 1; i >= 0; i-- {
		if d.rounds[i].hasFit() {
			return &d.rounds[i]
		}
	}
	return nil
}

// last is the final decision, nil when none.
func (d *data) last() *round {
	if len(d.rounds) == 0 {
		return nil
	}
	return &d.rounds[len(d.rounds)-1]
}

// limit returns a requirement, NaN when unset.
func (d *data) limit(get func(*requirements) float64) float64 {
	if d.req == nil {
		return math.NaN()
	}
	return get(d.req)
}
