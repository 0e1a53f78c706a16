package ui

import (
	"html/template"
	"io/fs"
	"net/http"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
)

// maxCompare bounds the runs one compare page reads.
const maxCompare = 8

type compareRun struct {
	ID, Color, Status, StatusClass string
	Summary                        report.Summary
	Damaged                        string
}

// comparePage overlays the curves of the runs named by run=ID parameters
// and shows their decisions side by side.
func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) {
	ids := r.URL.Query()["run"]
	if len(ids) < 2 {
		s.problem(w, http.StatusBadRequest, "Pick two runs or more", "Compare needs at least two run=ID parameters; tick runs in the list and press Compare.")
		return
	}
	if len(ids) > maxCompare {
		s.problem(w, http.StatusBadRequest, "Too many runs", "Compare shows at most 8 runs at once.")
		return
	}
	colors := report.CompareColors()
	var views []*report.View
	var labels []string
	var runs []compareRun
	for _, id := range ids {
		if err := checkID(id); err != nil {
			s.problem(w, http.StatusBadRequest, "Not a run id", err.Error())
			return
		}
		cr := compareRun{ID: id}
		if _, err := s.manifest(id); err != nil {
			cr.Status, cr.StatusClass, cr.Damaged = StatusDamaged, "bad", err.Error()
			runs = append(runs, cr)
			continue
		}
		run, err := s.store.Load(id)
		if err != nil {
			cr.Status, cr.StatusClass, cr.Damaged = StatusDamaged, "bad", err.Error()
			runs = append(runs, cr)
			continue
		}
		m := run.Manifest()
		cr.Status, cr.StatusClass = m.Status, statusClass(m.Status)
		v, err := buildView(run)
		if err != nil {
			cr.Status, cr.StatusClass, cr.Damaged = StatusDamaged, "bad", err.Error()
			runs = append(runs, cr)
			continue
		}
		cr.Color = colors[len(views)%len(colors)]
		cr.Summary = v.Summary()
		views = append(views, v)
		labels = append(labels, id)
		runs = append(runs, cr)
	}
	data := map[string]any{"Title": "Compare runs", "Runs": runs}
	if len(views) > 0 {
		svg, caption, err := report.CompareChart(views, labels)
		if err != nil {
			data["ChartError"] = err.Error()
		}
		data["Chart"], data["Caption"] = svg, caption
	} else {
		data["Chart"] = template.HTML("")
	}
	s.render(w, http.StatusOK, "compare.html", data)
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	switch name {
	case "report.css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		_, _ = w.Write([]byte(report.StyleSheet()))
		return
	case "report.js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write([]byte(report.Script()))
		return
	}
	// Only the embedded assets, by exact name: no path reaches the disk.
	data, err := fs.ReadFile(assetFS, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	switch {
	case len(name) > 3 && name[len(name)-3:] == ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case len(name) > 4 && name[len(name)-4:] == ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write(data)
}
