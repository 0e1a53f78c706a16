package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// runIDLen is the length of a whole run id (runstore.NewRunID): the UI
// names runs by their whole id, never by a prefix.
const runIDLen = len("20261128-231726-a1b2c3")

// checkID refuses anything but a whole run id of the store's format, so a
// request can name no path but a run directory.
func checkID(id string) error {
	if len(id) != runIDLen {
		return &runstore.InvalidRunIDError{ID: id}
	}
	return runstore.CheckRunID(id)
}

// runEntry is one run in the list.
type runEntry struct {
	ID       string   `json:"id"`
	Status   string   `json:"status"`
	Pipeline []string `json:"pipeline,omitempty"`
	Decision string   `json:"decision,omitempty"`
	Chosen   string   `json:"chosen,omitempty"`
	Started  string   `json:"started,omitempty"`
	Duration string   `json:"duration,omitempty"`
	TraceID  string   `json:"trace_id,omitempty"`
	// Damaged is why the run cannot be read: its manifest is missing or
	// does not parse.
	Damaged string `json:"damaged,omitempty"`
	// startedAt orders runs whose ids name the same second.
	startedAt time.Time
}

// StatusDamaged is the status the UI shows a run it cannot read.
const StatusDamaged = "damaged"

// listRuns reads every run directory of the store, newest first. A run
// directory whose manifest is missing or unreadable is listed as damaged
// with the reason; a directory removed while it is read is left out.
func (s *Server) listRuns() ([]runEntry, error) {
	entries, err := os.ReadDir(s.store.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []runEntry
	for _, e := range entries {
		if !e.IsDir() || checkID(e.Name()) != nil {
			continue
		}
		re, ok := s.entry(e.Name())
		if ok {
			out = append(out, re)
		}
	}
	// Newest first. An id names its second, and its random suffix says
	// nothing of the order within it: there the manifests' start times do.
	const second = len("20261128-231726")
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ID[:second] == b.ID[:second] && !a.startedAt.Equal(b.startedAt) {
			return a.startedAt.After(b.startedAt)
		}
		return a.ID > b.ID
	})
	return out, nil
}

func (s *Server) entry(id string) (runEntry, bool) {
	re := runEntry{ID: id}
	m, err := s.manifest(id)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(s.store.Root, id)); serr != nil {
			return re, false // deleted meanwhile
		}
	}
	if err != nil {
		re.Status, re.Damaged = StatusDamaged, err.Error()
		return re, true
	}
	re.Status, re.Pipeline, re.TraceID = m.Status, m.Pipeline, m.TraceID
	if d := m.Decision; d != nil {
		re.Decision = d.Status
		re.Chosen = cmpOr(d.ChosenName, d.Chosen)
	}
	re.startedAt = m.StartedAt
	if !m.StartedAt.IsZero() {
		re.Started = m.StartedAt.UTC().Format("2006-01-02 15:04:05Z")
		end := time.Now()
		if m.FinishedAt != nil {
			end = *m.FinishedAt
		}
		re.Duration = end.Sub(m.StartedAt).Round(time.Second).String()
	}
	return re, true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// maxManifest bounds the manifest read: a real one is kilobytes.
const maxManifest = 64 << 20

// manifest reads a run's manifest, naming what is wrong with it.
func (s *Server) manifest(id string) (*runstore.Manifest, error) {
	path := filepath.Join(s.store.Root, id, "manifest.json")
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("manifest.json is missing: %w", err)
		}
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("manifest.json is not a regular file")
	}
	if fi.Size() > maxManifest {
		return nil, fmt.Errorf("manifest.json is %d bytes, more than a manifest can be", fi.Size())
	}
	// The snapshot with its change log applied: a running run's newest
	// stage records are in the log, not yet in manifest.json.
	m, err := runstore.ReadManifest(filepath.Join(s.store.Root, id))
	if err != nil {
		return nil, err
	}
	if m.RunID != id {
		return nil, fmt.Errorf("manifest.json names run %q, not its directory's %q", m.RunID, id)
	}
	return &m, nil
}

func (s *Server) runsJSON(w http.ResponseWriter, r *http.Request) {
	runs, err := s.listRuns()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if runs == nil {
		runs = []runEntry{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(runs)
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	runs, err := s.listRuns()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.render(w, http.StatusOK, "runs.html", map[string]any{
		"Title": "sweetspot runs", "Runs": runs, "Root": s.store.Root, "Filter": r.URL.Query().Get("q"),
	})
}

// render executes a page template into a buffer first, so a failure is a
// clean error page rather than half a page.
func (s *Server) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = buf.WriteTo(w)
}

// problem answers with an error page that says what is wrong.
func (s *Server) problem(w http.ResponseWriter, code int, title, detail string) {
	s.render(w, code, "problem.html", map[string]any{"Title": title, "Detail": detail})
}

// loadRun reads a run for a page: a bad id is 400, a run that is not (or
// no longer) there 404, a damaged manifest 200 with the reason (the page
// shows it, as the list does).
func (s *Server) loadRun(w http.ResponseWriter, id string) (*runstore.Run, bool) {
	if err := checkID(id); err != nil {
		s.problem(w, http.StatusBadRequest, "Not a run id", err.Error())
		return nil, false
	}
	if _, err := os.Stat(filepath.Join(s.store.Root, id)); err != nil {
		s.problem(w, http.StatusNotFound, "No run "+id, "There is no run "+id+" in "+s.store.Root+" (it may have been deleted).")
		return nil, false
	}
	if _, err := s.manifest(id); err != nil {
		s.render(w, http.StatusOK, "damaged.html", map[string]any{"Title": "Run " + id + " is damaged", "ID": id, "Reason": err.Error()})
		return nil, false
	}
	run, err := s.store.Load(id)
	if err != nil {
		s.render(w, http.StatusOK, "damaged.html", map[string]any{"Title": "Run " + id + " is damaged", "ID": id, "Reason": err.Error()})
		return nil, false
	}
	return run, true
}

// buildView builds a run's report view, live; a damaged output file is
// the reason the page shows.
func buildView(run *runstore.Run) (*report.View, error) {
	v, err := report.Build(run, report.IncludeRunning())
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "report of run "+run.ID()+": "))
	}
	return v, nil
}
