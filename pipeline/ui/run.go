package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// liveSections are the report's parts the run page shows and replaces as
// the run goes on (the trace has a page of its own).
var liveSections = []string{"ship", "charts", "rounds", "trials"}

// runView is what the run page shows of a run.
type runView struct {
	Title, ID, Status, StatusClass string
	Pipeline, Started, Duration    string
	TraceID, Error                 string
	Live                           bool
	Summary                        report.Summary
	Stages                         []stageRow
	Sections                       map[string]template.HTML
	// Damaged is why the run's files cannot be read; the page then shows
	// what the manifest says and the reason.
	Damaged string
}

type stageRow struct {
	Addr, Kind, Status, Class, Rounds, Took, Error string
}

func statusClass(s string) string {
	switch s {
	case runstore.StatusSucceeded, "converged":
		return "good"
	case runstore.StatusFailed, StatusDamaged, "infeasible":
		return "bad"
	case runstore.StatusCanceled, runstore.StatusSkipped, "budget_exhausted":
		return "warn"
	default:
		return "info"
	}
}

// view reads a run into what its page shows.
func (s *Server) view(run *runstore.Run) runView {
	m := run.Manifest()
	rv := runView{
		Title: "Run " + m.RunID, ID: m.RunID, Status: m.Status, StatusClass: statusClass(m.Status),
		Pipeline: strings.Join(m.Pipeline, ", "), TraceID: m.TraceID, Error: m.Error,
		Live: m.Status == runstore.StatusRunning, Sections: map[string]template.HTML{},
	}
	if !m.StartedAt.IsZero() {
		rv.Started = m.StartedAt.UTC().Format("2006-01-02 15:04:05Z")
		end := time.Now()
		if m.FinishedAt != nil {
			end = *m.FinishedAt
		}
		rv.Duration = end.Sub(m.StartedAt).Round(100 * time.Millisecond).String()
	}
	for _, st := range m.Stages {
		row := stageRow{Addr: st.Addr, Kind: st.Kind, Status: st.Status, Class: statusClass(st.Status), Error: st.Error}
		if st.Rounds > 0 {
			row.Rounds = fmt.Sprint(st.Rounds)
		}
		if st.StartedAt != nil {
			end := time.Now()
			if st.FinishedAt != nil {
				end = *st.FinishedAt
			}
			row.Took = end.Sub(*st.StartedAt).Round(10 * time.Millisecond).String()
		}
		rv.Stages = append(rv.Stages, row)
	}
	v, err := buildView(run)
	if err != nil {
		rv.Damaged = err.Error()
		rv.Status, rv.StatusClass = StatusDamaged, "bad"
		return rv
	}
	rv.Summary = v.Summary()
	for _, name := range liveSections {
		var buf bytes.Buffer
		if err := v.WriteSection(&buf, name); err != nil {
			rv.Sections[name] = template.HTML("<p class=\"footnote\">" + template.HTMLEscapeString(err.Error()) + "</p>")
			continue
		}
		rv.Sections[name] = template.HTML(buf.String())
	}
	return rv
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r.PathValue("id"))
	if !ok {
		return
	}
	s.render(w, http.StatusOK, "run.html", s.view(run))
}

// update is one server-sent event of a live run page: the page's parts,
// rendered as the page renders them, to put in place.
type update struct {
	Status string            `json:"status"`
	Live   bool              `json:"live"`
	Parts  map[string]string `json:"parts"`
}

func (s *Server) update(run *runstore.Run) (update, error) {
	rv := s.view(run)
	u := update{Status: rv.Status, Live: rv.Live, Parts: map[string]string{}}
	for _, part := range []string{"runhead", "stages"} {
		var buf bytes.Buffer
		if err := pages.ExecuteTemplate(&buf, part, rv); err != nil {
			return u, err
		}
		u.Parts[part] = buf.String()
	}
	for name, html := range rv.Sections {
		u.Parts[name] = string(html)
	}
	return u, nil
}

// runEvents streams a run's page parts as server-sent events: one when the
// stream opens, one each time the run's files change (looked at every
// poll interval), and an "end" event once the run is no longer running,
// after which the stream closes. A run deleted meanwhile gets a "gone"
// event.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := checkID(id); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	dir := filepath.Join(s.store.Root, id)
	if _, err := os.Stat(dir); err != nil {
		http.Error(w, "no run "+id, http.StatusNotFound)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	send := func(event string, v any) bool {
		data, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	last := uint64(0)
	first := true
	for {
		fp, err := fingerprint(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			send("gone", map[string]string{"id": id})
			return
		case err == nil && (first || fp != last):
			first, last = false, fp
			if _, merr := s.manifest(id); merr != nil {
				if !send("update", update{Status: StatusDamaged, Parts: map[string]string{"runhead": damagedHead(id, merr)}}) {
					return
				}
				break
			}
			run, lerr := s.store.Load(id)
			if lerr != nil {
				break // rewritten under us; the next look reads it whole
			}
			u, uerr := s.update(run)
			if uerr != nil || !send("update", u) {
				return
			}
			if !u.Live {
				send("end", map[string]string{"status": u.Status})
				return
			}
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

func damagedHead(id string, err error) string {
	var buf bytes.Buffer
	_ = pages.ExecuteTemplate(&buf, "runhead", runView{ID: id, Status: StatusDamaged, StatusClass: "bad", Damaged: err.Error()})
	return buf.String()
}

// fingerprint sums what a run page shows changes in: the manifest, the
// stages' files (a finished trial grows a journal and its sums) and the
// span files, by name, size and modification time. Looking is cheap next to
// rendering, and works on every file system (no inotify needed, nor a
// limit on watches); a missing run directory is fs.ErrNotExist.
func fingerprint(dir string) (uint64, error) {
	if _, err := os.Stat(dir); err != nil {
		return 0, err
	}
	h := fnv.New64a()
	add := func(path string, fi fs.FileInfo) {
		fmt.Fprintf(h, "%s %d %d\n", path, fi.Size(), fi.ModTime().UnixNano())
	}
	if fi, err := os.Stat(filepath.Join(dir, "manifest.json")); err == nil {
		add("manifest.json", fi)
	}
	// A running run's stage records are appended to its change log
	// (manifest.N.log) between snapshots.
	if logs, err := filepath.Glob(filepath.Join(dir, "manifest.*.log")); err == nil {
		for _, path := range logs {
			if fi, err := os.Stat(path); err == nil {
				add(filepath.Base(path), fi)
			}
		}
	}
	for _, sub := range []string{"stages", "spans"} {
		_ = filepath.WalkDir(filepath.Join(dir, sub), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			// Every file: a journal's batch counts once its digest is
			// in the sums file beside it, written just after.
			if fi, err := d.Info(); err == nil {
				add(path, fi)
			}
			return nil
		})
	}
	return h.Sum64(), nil
}

func (s *Server) tracePage(w http.ResponseWriter, r *http.Request) {
	run, ok := s.loadRun(w, r.PathValue("id"))
	if !ok {
		return
	}
	rv := s.view(run)
	rv.Title = "Trace of run " + rv.ID
	if rv.Damaged == "" {
		v, err := buildView(run)
		if err == nil {
			var buf bytes.Buffer
			if err := v.WriteSection(&buf, "trace"); err == nil {
				rv.Sections["trace"] = template.HTML(buf.String())
			}
		}
	}
	s.render(w, http.StatusOK, "trace.html", rv)
}
