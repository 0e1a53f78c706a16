package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// A View is a run's report built once and rendered whole (the offline
// page, Write) or part by part (sweetspot ui's run page, which shows the
// same parts and replaces them as a run goes on). Both render with the
// same templates (sections.html.tmpl), style sheet (sections.css) and
// script (sort.js), so what the two show cannot drift apart.
type View struct {
	pg *pageData
	d  *data
}

// pageData is what the templates see: the page, and what every part
// needs besides.
type pageData struct {
	*page
	SectionCSS template.CSS
	Script     template.JS
	Trace      traceView
}

// Sections are the parts of a report a View renders on their own, by
// name: the headline's ship line (how to export the chosen model; empty
// when the run kept none), the charts, the rounds' decisions, the trials
// table and the trace waterfall.
var Sections = []string{"ship", "charts", "rounds", "trials", "trace"}

// IncludeRunning makes the View show a run that is still going on: the
// trials its running stages have journalled (finished trials, synced as
// they finish) besides the committed rounds.
func IncludeRunning() Option { return func(o *options) { o.live = true } }

// Build reads the run and prepares every part of its report. A file the
// manifest records that is damaged, or that lies outside the run
// directory, fails the build with an error naming it.
func Build(run *runstore.Run, opts ...Option) (*View, error) {
	o := options{mem: memory.DefaultAllocator}
	for _, opt := range opts {
		opt(&o)
	}
	d, err := load(run, o)
	if err != nil {
		return nil, fmt.Errorf("report of run %s: %w", run.ID(), err)
	}
	pg, err := buildPage(d)
	if err != nil {
		return nil, fmt.Errorf("report of run %s: %w", run.ID(), err)
	}
	m := &d.manifest
	ids := m.TraceIDs
	if len(ids) == 0 && m.TraceID != "" {
		ids = []string{m.TraceID}
	}
	return &View{pg: &pageData{
		page:       pg,
		SectionCSS: template.CSS(sectionsCSS),
		Script:     Script(),
		Trace:      buildTrace(readSpanFiles(run.Path("spans")), ids),
	}, d: d}, nil
}

// WritePage writes the whole offline page.
func (v *View) WritePage(w io.Writer) error {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, v.pg); err != nil {
		return fmt.Errorf("report of run %s: %w", v.pg.RunID, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// WriteSection writes one of Sections as an HTML fragment.
func (v *View) WriteSection(w io.Writer, name string) error {
	known := false
	for _, s := range Sections {
		known = known || s == name
	}
	if !known {
		return fmt.Errorf("report has no section %q", name)
	}
	data := any(v.pg)
	if name == "trace" {
		data = v.pg.Trace
	}
	return pageTemplate.ExecuteTemplate(w, name, data)
}

// Summary is the report's headline of a run, for a page that lays out its
// own header.
type Summary struct {
	Headline, Verdict, VerdictClass, Reason, Summary string
	// Trials and Rounds count what the report shows.
	Trials, Rounds int
	// Warnings are problems the reader met and worked around.
	Warnings []string
}

// Summary returns the report's headline.
func (v *View) Summary() Summary {
	return Summary{
		Headline: v.pg.Headline, Verdict: v.pg.Verdict, VerdictClass: v.pg.VerdictClass,
		Reason: v.pg.Reason, Summary: v.pg.page.Summary,
		Trials: len(v.pg.Table.Rows), Rounds: len(v.pg.Rounds), Warnings: v.pg.Warnings,
	}
}

//go:embed sections.html.tmpl
var sectionsSource string

//go:embed sections.css
var sectionsCSS string

//go:embed sort.js
var sortJS string

// StyleSheet is the CSS of the report's parts, with the charts' embedded
// font, for a page of its own around them (the offline page has the font
// once in its head).
func StyleSheet() template.CSS {
	font, err := fontCSS()
	if err != nil {
		// The charts then fall back to the page's sans-serif face.
		font = ""
	}
	return font + template.CSS(sectionsCSS)
}

// Script is the report's script: sorting the trials table.
func Script() template.JS { return template.JS(sortJS) }
