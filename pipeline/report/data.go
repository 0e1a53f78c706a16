package report

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Port names the report reads. Their tables are the contract of package
// sdk/tables (docs/tables.md); any stage that writes a port of that name
// is read, so a third-party evaluation or resize stage gets a report too.
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
		// The manifest is outside input too: a path in it that leaves the
		// run directory is refused, never read.
		if !filepath.IsLocal(o.Path) {
			return nil, fmt.Errorf("the manifest records %q, a path outside the run directory", o.Path)
		}
		if isJournal(o.Path) {
			if err := readJournal(run, o.Path, f, mem); err != nil {
				return nil, err
			}
			continue
		}
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
	// live adds the trials running stages journalled (IncludeRunning).
	live bool
	// ship is how to export the chosen model, nil when the run kept none.
	ship *shipping
}

// trial is one row of the results table.
type trial struct {
	// ID is the candidate id, unique in the run; Name is the model's own
	// name ("convnet-s8", a table row's name), shared by its quantized
	// and pruned variants. A run written before the name column has the
	// id as its name.
	ID, Name, Family, Kind                         string
	Status, Error, Preprocess, Quantize, Knobs     string
	Round, Depth, Width                            int
	Size                                           float64
	Params, Flops, LearningRate, PruneFraction     float64
	Accuracy, Loss, RMSE, R2                       float64
	LatencyP50, LatencyP95, Throughput             float64
	ModelBytes, PeakBytes, TrainSeconds, EpochsRun float64
	// Setting is the search setting the trial tried ("" without a
	// search); Outranked marks a setting its search did not choose for
	// the size (tables.Result.Outranked): shown in the table, not plotted.
	Setting   string
	Outranked bool
	row       int
}

// label is how the report names the trial's model.
func (t *trial) label() string { return cmp.Or(t.Name, t.ID) }

// pointLabel names the trial on a chart: its name, or its id when the id
// tells a variant (quantized, pruned) from the model it was made of.
func (t *trial) pointLabel() string {
	if t.ID != "" && t.ID != t.Name && strings.HasPrefix(t.ID, t.Name) {
		return t.ID
	}
	return t.label()
}

// mlp reports whether the trial is a built-in MLP (or its linear
// baseline), whose depth and width describe it.
func (t *trial) mlp() bool { return t.Kind == tables.KindMLP }

// quality is the trial's value of the report's metric.
func (t *trial) quality(metric string) float64 {
	if metric == metricLoss {
		return t.Loss
	}
	return t.Accuracy
}

func (t *trial) ok() bool { return t.Status == "" || t.Status == tables.StatusOK }

// round is one row of the decision table.
type round struct {
	Round                            int
	Status, Action, Strategy, Chosen string
	// ChosenName and ChosenFamily name the chosen model ("" in a
	// decision table written before those columns); ChosenParams is
	// its parameter count, NaN when unknown.
	ChosenName, ChosenFamily  string
	ChosenParams              float64
	Reason, Metric            string
	Target, Measured          float64
	Predicted, PredLo, PredHi float64
	QInf, QInfLo, QInfHi      float64
	A, ALo, AHi               float64
	Alpha, AlphaLo, AlphaHi   float64
	FitPoints                 float64
	FitRMSE, FitR2            float64
	Trusted                   bool
	LatencyCoef, LatencyExp   float64
	BytesCoef, BytesExp       float64
	TrainCoef, TrainExp       float64
	BracketLo, BracketHi      float64
	TrialsUsed, TrialsLeft    float64
	Proposals                 float64
	Front                     []string
	Confidence                float64
	// Scaling is a compute_optimal search's fitted law; nil otherwise.
	Scaling *tables.Scaling
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
func load(run *runstore.Run, o options) (*data, error) {
	d := &data{manifest: run.Manifest(), live: o.live}
	mem := o.mem
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
	case d.req != nil && (d.req.Task == tables.Regression || d.req.Metric == metricLoss):
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
			if d.trials[i].ID == chosen && !d.trials[i].Outranked {
				d.chosen = &d.trials[i]
			}
		}
		if d.chosen == nil {
			d.warnings = append(d.warnings, fmt.Sprintf("the chosen candidate %s is not in the results table", chosen))
		}
	}
	d.ship = d.loadShipping(run)
	return d, nil
}

// model is a model as the report names it.
type model struct {
	name, family string
	params       float64 // NaN when unknown
}

// text is the model's name with its family and parameter count:
// "resnet50 (zoo, 25.56M params)".
func (m model) text() string { return DescribeModel(m.name, m.family, m.params) }

// DescribeModel names a model with its family and parameter count, as the
// report and the CLI write it: "resnet50 (zoo, 25.56M params)". An empty
// family, and a count that is not positive, are left out.
func DescribeModel(name, family string, params float64) string {
	var parts []string
	if family != "" && family != name {
		parts = append(parts, family)
	}
	if finite(params) && params > 0 {
		parts = append(parts, FormatParams(params)+" params")
	}
	if len(parts) == 0 {
		return name
	}
	return name + " (" + strings.Join(parts, ", ") + ")"
}

// roundModel is the model a round chose: named by the decision's
// chosen_name and chosen_family, else as the results row of its id names
// it (a decision written before those columns), else by the id; its
// parameter count is the results row's, else the decision's. name is ""
// when the round chose none. The CLI's runs show follows the same rule.
func (d *data) roundModel(r *round) model {
	if r == nil || (r.Chosen == "" && r.ChosenName == "") {
		return model{params: math.NaN()}
	}
	m := model{name: cmp.Or(r.ChosenName, r.Chosen), family: r.ChosenFamily, params: r.ChosenParams}
	// The same id may be trained in several rounds; the latest row is
	// the one decided on.
	for i := len(d.trials) - 1; i >= 0; i-- {
		if t := &d.trials[i]; r.Chosen != "" && t.ID == r.Chosen {
			m.name = cmp.Or(r.ChosenName, t.label())
			m.family = cmp.Or(r.ChosenFamily, t.Family)
			if finite(t.Params) && t.Params > 0 {
				m.params = t.Params
			}
			break
		}
	}
	return m
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
			Round: int(f.f(tables.ColRound, i)), Status: f.s(tables.ColStatus, i), Action: f.s("action", i),
			Strategy: f.s("strategy", i), Chosen: f.s(tables.ColChosenCandidateID, i),
			ChosenName: f.s(tables.ColChosenName, i), ChosenFamily: f.s(tables.ColChosenFamily, i),
			ChosenParams: f.f(tables.ColChosenParams, i),
			Reason:       f.s(tables.ColReason, i), Metric: f.s("metric", i),
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
		if js := f.s(tables.ColScaling, i); js != "" {
			if sc, err := tables.ParseScaling(js); err == nil {
				r.Scaling = sc
			} else {
				d.warnings = append(d.warnings, fmt.Sprintf("round %d: %v", r.Round, err))
			}
		}
		d.rounds = append(d.rounds, r)
	}
	sort.SliceStable(d.rounds, func(i, j int) bool { return d.rounds[i].Round < d.rounds[j].Round })
	return nil
}

func (d *data) loadResults(run *runstore.Run, m *runstore.Manifest, mem memory.Allocator) error {
	stages := findPort(m, portResults)
	if d.live {
		stages = withJournals(run, m, portResults, stages)
	}
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
		holds := chosen != "" && contains(f.str[tables.ColCandidateID], chosen)
		if best == nil || holds || (!contains(best.str[tables.ColCandidateID], chosen) && f.rows > best.rows) {
			best, d.resultsStage = f, s.stage
		}
	}
	if len(stages) > 1 {
		d.warnings = append(d.warnings, fmt.Sprintf("%d stages write a results port; showing %s", len(stages), d.resultsStage))
	}
	f := best
	for i := range f.rows {
		t := trial{
			ID: f.s(tables.ColCandidateID, i), Name: f.s(tables.ColName, i),
			Family: f.s(tables.ColFamily, i), Kind: f.s(tables.ColFamilyKind, i), Knobs: f.s(tables.ColKnobs, i),
			Status: f.s(tables.ColStatus, i), Error: f.s(tables.ColError, i),
			Preprocess: f.s(tables.ColPreprocess, i), Quantize: f.s(tables.ColQuantize, i),
			Round: int(zeroNaN(f.f(tables.ColRound, i))), Depth: int(zeroNaN(f.f(tables.ColDepth, i))), Width: int(zeroNaN(f.f(tables.ColWidth, i))),
			Size:   f.f(tables.ColSize, i),
			Params: f.f(tables.ColParams, i), Flops: f.f(tables.ColFLOPs, i), LearningRate: f.f(tables.ColLearningRate, i), PruneFraction: f.f(tables.ColPruneFraction, i),
			Accuracy: f.f(tables.ColAccuracy, i), Loss: f.f(tables.ColLoss, i), RMSE: f.f(tables.ColRMSE, i), R2: f.f(tables.ColR2, i),
			LatencyP50: f.f(tables.ColLatencyP50Ms, i), LatencyP95: f.f(tables.ColLatencyP95Ms, i), Throughput: f.f(tables.ColThroughputPerS, i),
			ModelBytes: f.f(tables.ColModelBytes, i), PeakBytes: f.f(tables.ColPeakBytes, i), TrainSeconds: f.f(tables.ColTrainSeconds, i),
			EpochsRun: f.f(tables.ColEpochsRun, i), row: i,
			Setting: f.s(tables.ColSetting, i),
		}
		t.Outranked = t.Setting != "" && f.f(tables.ColSettingChosen, i) != 1
		// Tables written before name, family_kind and size existed: the
		// name is the id and the family an MLP's, as tables.Candidate's
		// WithDefaults reads them.
		t.Name = cmp.Or(t.Name, t.ID)
		t.Kind = cmp.Or(t.Kind, tables.KindMLP)
		if t.mlp() && !(t.Size > 0) {
			t.Size = float64(t.Width)
		}
		d.trials = append(d.trials, t)
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
		Task: f.s(tables.ColTask, 0), Metric: f.s(tables.ColMetric, 0),
		MinAccuracy: f.f(tables.ColMinAccuracy, 0), MaxLoss: f.f(tables.ColMaxLoss, 0),
		MaxLatencyMs: f.f(tables.ColMaxLatencyMs, 0), MaxParams: f.f(tables.ColMaxParams, 0),
		MaxModelBytes: f.f(tables.ColMaxModelBytes, 0), MaxTrainSeconds: f.f(tables.ColMaxTrainSeconds, 0),
		MaxTrials: f.f(tables.ColMaxTrials, 0), MaxWallSeconds: f.f(tables.ColMaxWallSeconds, 0),
		Rows: f.f(tables.ColRows, 0), Features: f.f(tables.ColFeatures, 0), Classes: f.f(tables.ColClasses, 0),
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
