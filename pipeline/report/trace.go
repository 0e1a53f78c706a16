package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
)

// A run's spans are in its span files (spans/*.jsonl, and spans/<worker>/
// for a Temporal worker's plugins): one JSON object per line, as
// OpenTelemetry's stdouttrace exporter writes a span when it ends
// (internal/telemetry). The trace view reads them back into one waterfall,
// so a run's trace reads without a Jaeger.
//
// The files are outside input (anything may have written them, and a
// process killed while it wrote leaves a torn last line): every line is
// parsed on its own, a line that does not read is counted and named, and
// what is read is bounded.

// Limits of what the trace view reads of a run: past them it says what it
// left out.
const (
	maxSpanFileBytes = 64 << 20
	maxSpanLine      = 1 << 20
	maxSpans         = 20000
)

// spanJSON is one line of a span file: the fields of stdouttrace's span
// stub that the waterfall shows.
type spanJSON struct {
	Name        string `json:"Name"`
	SpanContext struct {
		TraceID string `json:"TraceID"`
		SpanID  string `json:"SpanID"`
	} `json:"SpanContext"`
	Parent struct {
		TraceID string `json:"TraceID"`
		SpanID  string `json:"SpanID"`
		Remote  bool   `json:"Remote"`
	} `json:"Parent"`
	SpanKind   int        `json:"SpanKind"`
	StartTime  time.Time  `json:"StartTime"`
	EndTime    time.Time  `json:"EndTime"`
	Attributes []attrJSON `json:"Attributes"`
	Events     []struct {
		Name       string     `json:"Name"`
		Time       time.Time  `json:"Time"`
		Attributes []attrJSON `json:"Attributes"`
	} `json:"Events"`
	Status struct {
		Code        string `json:"Code"`
		Description string `json:"Description"`
	} `json:"Status"`
	Resource []attrJSON `json:"Resource"`
}

type attrJSON struct {
	Key   string `json:"Key"`
	Value struct {
		Type  string          `json:"Type"`
		Value json.RawMessage `json:"Value"`
	} `json:"Value"`
}

// text writes an attribute's value as people read it: strings bare,
// numbers and booleans as JSON writes them, slices joined.
func (a attrJSON) text() string {
	raw := a.Value.Value
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []any
	if json.Unmarshal(raw, &list) == nil {
		parts := make([]string, len(list))
		for i, v := range list {
			parts[i] = fmt.Sprint(v)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return string(bytes.TrimSpace(raw))
}

// span is one span of the run, as the waterfall places it.
type span struct {
	name, traceID, id, parent, service string
	start, end                         time.Time
	attrs                              []keyValue
	events                             []spanEvent
	statusCode, statusText             string
	file                               string
	endpoint                           string
	children                           []*span
}

type spanEvent struct {
	Name  string
	At    string
	Attrs []keyValue
}

// spanSet is every span read from a run's files, with what could not be.
type spanSet struct {
	spans    []*span
	problems []string
	// skipped counts spans past maxSpans, and bytes past the file limit.
	skipped int
}

// readSpanFiles reads every span file under dir (the run's spans/): regular
// files only, so a link in the run directory cannot lead the reader out
// of it. A missing directory is no spans.
func readSpanFiles(dir string) *spanSet {
	set := &spanSet{}
	budget := int64(maxSpanFileBytes)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			set.problems = append(set.problems, err.Error())
			return nil
		}
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".jsonl") {
			return nil
		}
		rel, _ := filepath.Rel(filepath.Dir(dir), path)
		if budget <= 0 {
			set.problems = append(set.problems, fmt.Sprintf("%s: not read: the run's span files pass %d MiB", rel, maxSpanFileBytes>>20))
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			set.problems = append(set.problems, err.Error())
			return nil
		}
		defer f.Close()
		lr := &io.LimitedReader{R: f, N: budget}
		parseSpans(lr, filepath.ToSlash(rel), set)
		budget = lr.N
		return nil
	})
	if err != nil {
		set.problems = append(set.problems, err.Error())
	}
	return set
}

// parseSpans adds the spans of one span file to set. A line that is not a
// span (torn by a crash, or damaged) is reported with its line number and
// skipped; the lines after it still count.
func parseSpans(r io.Reader, name string, set *spanSet) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxSpanLine)
	line, bad := 0, 0
	firstBad := ""
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var sj spanJSON
		if err := json.Unmarshal(b, &sj); err != nil || sj.SpanContext.SpanID == "" || sj.SpanContext.TraceID == "" {
			bad++
			if firstBad == "" {
				if err == nil {
					err = errors.New("no span id")
				}
				firstBad = fmt.Sprintf("line %d: %v", line, err)
			}
			continue
		}
		if len(set.spans) >= maxSpans {
			set.skipped++
			continue
		}
		set.spans = append(set.spans, spanOf(&sj, name))
	}
	if err := sc.Err(); err != nil {
		set.problems = append(set.problems, fmt.Sprintf("%s: line %d: %v", name, line+1, err))
	}
	if bad > 0 {
		set.problems = append(set.problems, fmt.Sprintf("%s: %d line(s) are not spans and were skipped (%s)", name, bad, firstBad))
	}
}

func spanOf(sj *spanJSON, file string) *span {
	s := &span{
		name: sj.Name, traceID: sj.SpanContext.TraceID, id: sj.SpanContext.SpanID,
		start: sj.StartTime, end: sj.EndTime, statusCode: sj.Status.Code, statusText: sj.Status.Description,
		file: file,
	}
	if p := sj.Parent.SpanID; p != "" && strings.Trim(p, "0") != "" {
		s.parent = p
	}
	for _, a := range sj.Resource {
		switch a.Key {
		case "service.name":
			s.service = a.text()
		case telemetry.OTLPEndpointAttr:
			s.endpoint = a.text()
		}
	}
	for _, a := range sj.Attributes {
		s.attrs = append(s.attrs, keyValue{Key: a.Key, Value: a.text()})
	}
	for _, e := range sj.Events {
		ev := spanEvent{Name: e.Name}
		if !e.Time.IsZero() && !sj.StartTime.IsZero() {
			ev.At = "+" + fmtDuration(e.Time.Sub(sj.StartTime))
		}
		for _, a := range e.Attributes {
			ev.Attrs = append(ev.Attrs, keyValue{Key: a.Key, Value: a.text()})
		}
		s.events = append(s.events, ev)
	}
	return s
}

// traceView is the waterfall the page shows.
type traceView struct {
	Rows      []spanRow
	Total     string
	TraceIDs  []string
	Jaeger    []jaegerLink
	Problems  []string
	Spans     int
	Truncated string
}

type jaegerLink struct{ TraceID, URL string }

type spanRow struct {
	Name, Service, Kind, Duration string
	Depth                         int
	// Left and Width place the bar, in percent of the run's time span.
	Left, Width     string
	Attrs           []keyValue
	Events          []spanEvent
	Status, ID, Of  string
	Error           bool
	Trace, Parent   string
	Started, Indent string
}

// maxRows bounds the waterfall's rows; the rest are counted.
const maxRows = 5000

// buildTrace places the spans of the run's traces (traceIDs, oldest first;
// every trace in the files when none is given) on one time axis, each
// span below its parent, siblings by start time.
func buildTrace(set *spanSet, traceIDs []string) traceView {
	tv := traceView{Problems: set.problems}
	want := map[string]bool{}
	for _, id := range traceIDs {
		if id != "" {
			want[id] = true
		}
	}
	byID := map[string]*span{}
	var kept []*span
	for _, s := range set.spans {
		if len(want) > 0 && !want[s.traceID] {
			continue
		}
		key := s.traceID + "/" + s.id
		if _, dup := byID[key]; dup {
			continue // a span recorded twice (a retried export) shows once
		}
		byID[key] = s
		kept = append(kept, s)
	}
	tv.Spans = len(kept)
	if len(kept) == 0 {
		return tv
	}
	seenTrace := map[string]bool{}
	endpoints := map[string]string{}
	lo, hi := kept[0].start, kept[0].end
	for _, s := range kept {
		if s.start.Before(lo) {
			lo = s.start
		}
		if s.end.After(hi) {
			hi = s.end
		}
		if !seenTrace[s.traceID] {
			seenTrace[s.traceID] = true
		}
		if s.endpoint != "" && endpoints[s.traceID] == "" {
			endpoints[s.traceID] = s.endpoint
		}
	}
	for _, id := range traceIDs {
		if seenTrace[id] {
			tv.TraceIDs = append(tv.TraceIDs, id)
			delete(seenTrace, id)
		}
	}
	var rest []string
	for id := range seenTrace {
		rest = append(rest, id)
	}
	sort.Strings(rest)
	tv.TraceIDs = append(tv.TraceIDs, rest...)
	for _, id := range tv.TraceIDs {
		if u := telemetry.JaegerTraceURL(endpoints[id], id); u != "" {
			tv.Jaeger = append(tv.Jaeger, jaegerLink{TraceID: id, URL: u})
		}
	}
	total := hi.Sub(lo)
	tv.Total = fmtDuration(total)

	var roots []*span
	for _, s := range kept {
		s.children = nil
	}
	for _, s := range kept {
		if p, ok := byID[s.traceID+"/"+s.parent]; ok && s.parent != "" && p != s {
			p.children = append(p.children, s)
		} else {
			roots = append(roots, s)
		}
	}
	order := func(ss []*span) {
		sort.SliceStable(ss, func(i, j int) bool {
			if !ss[i].start.Equal(ss[j].start) {
				return ss[i].start.Before(ss[j].start)
			}
			return ss[i].name < ss[j].name
		})
	}
	order(roots)
	pct := func(d time.Duration) float64 {
		if total <= 0 {
			return 0
		}
		return 100 * float64(d) / float64(total)
	}
	visited := map[*span]bool{}
	var walk func(s *span, depth int)
	walk = func(s *span, depth int) {
		if visited[s] {
			return // a cycle of parent ids in damaged files
		}
		visited[s] = true
		if len(tv.Rows) >= maxRows {
			return
		}
		left := pct(s.start.Sub(lo))
		width := pct(s.end.Sub(s.start))
		if left+width > 100 {
			width = 100 - left
		}
		r := spanRow{
			Name: s.name, Service: s.service, Kind: spanKind(s), Depth: depth,
			Duration: fmtDuration(s.end.Sub(s.start)),
			Left:     strconv.FormatFloat(max(left, 0), 'f', 3, 64) + "%",
			Width:    strconv.FormatFloat(max(width, 0), 'f', 3, 64) + "%",
			Indent:   strconv.Itoa(4+14*min(depth, 12)) + "px",
			Attrs:    s.attrs, Events: s.events, ID: s.id, Trace: s.traceID, Parent: s.parent, Of: s.file,
			Started: "+" + fmtDuration(s.start.Sub(lo)),
			Error:   s.statusCode == "Error",
		}
		if r.Error {
			r.Status = "error"
			if s.statusText != "" {
				r.Status += ": " + s.statusText
			}
		}
		tv.Rows = append(tv.Rows, r)
		order(s.children)
		for _, c := range s.children {
			walk(c, depth+1)
		}
	}
	for _, s := range roots {
		walk(s, 0)
	}
	if n := len(kept) - len(tv.Rows); n > 0 || set.skipped > 0 {
		tv.Truncated = fmt.Sprintf("%d span(s) are not shown: the waterfall shows at most %d rows and reads at most %d spans.", n+set.skipped, maxRows, maxSpans)
	}
	return tv
}

// spanKind sorts a span into the waterfall's colours by its name: the
// run's own tree (run, round, stage), the trials of an evaluation stage,
// and the gRPC calls between host and plugins.
func spanKind(s *span) string {
	switch {
	case s.statusCode == "Error":
		return "error"
	case s.name == "run" || strings.HasPrefix(s.name, "run "):
		return "run"
	case strings.HasPrefix(s.name, "round "):
		return "round"
	case strings.HasPrefix(s.name, "stage "):
		return "stage"
	case strings.HasPrefix(s.name, "trial "):
		return "trial"
	case strings.Contains(s.name, "/") && strings.Contains(s.name, "."):
		return "rpc"
	default:
		return "other"
	}
}
