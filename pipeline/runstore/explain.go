package runstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Explain says, round by round, why a stage of a run was or was not served
// from the cache: where its outputs came from, or what differed from the
// latest earlier run that executed the same stage.
func (s *Store) Explain(runID, stage string) ([]string, error) {
	run, err := s.Load(runID)
	if err != nil {
		return nil, err
	}
	m := run.Manifest()
	var rec *StageRecord
	var addrs []string
	for _, st := range m.Stages {
		addrs = append(addrs, st.Addr)
		if st.Addr == stage {
			rec = st
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("run %s has no stage %q (it has %s)", m.RunID, stage, strings.Join(addrs, ", "))
	}
	if len(rec.Executions) == 0 {
		msg := fmt.Sprintf("%s did not finish in run %s (status %s)", stage, m.RunID, rec.Status)
		if rec.Error != "" {
			msg += ": " + rec.Error
		}
		return []string{msg}, nil
	}
	earlier, err := s.earlierRuns(m.RunID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range rec.Executions {
		head := fmt.Sprintf("round %d: ", e.Round)
		switch e.Source {
		case "cache":
			out = append(out, head+fmt.Sprintf("served from the cache: run %s ran %s with the same plugin (%s %s, executable sha256 %.12s), the same config and the same inputs%s.",
				e.From, stage, e.Inputs.Plugin, e.Inputs.PluginVersion, e.Inputs.PluginSHA256, describePorts(e.Inputs.Ports)))
		case "resumed":
			out = append(out, head+"finished before the run was interrupted; kept when it was resumed.")
		default:
			why := s.whyRan(m, stage, e, earlier)
			if e.Note != "" {
				why += " (" + e.Note + ")"
			}
			out = append(out, head+"ran: "+why)
		}
	}
	return out, nil
}

// earlierRuns loads the runs older than id, newest first.
func (s *Store) earlierRuns(id string) ([]Manifest, error) {
	ids, err := s.IDs()
	if err != nil {
		return nil, err
	}
	// IDs are oldest first: the runs before id, newest first.
	at := slices.Index(ids, id)
	if at < 0 {
		at = len(ids)
	}
	ids = ids[:at]
	slices.Reverse(ids)
	var out []Manifest
	for _, other := range ids {
		r, err := s.Load(other)
		if err != nil {
			continue
		}
		out = append(out, r.Manifest())
	}
	return out, nil
}

func (s *Store) whyRan(m Manifest, stage string, e Execution, earlier []Manifest) string {
	if m.NoCache {
		return "--no-cache was given."
	}
	for _, em := range earlier {
		for _, st := range em.Stages {
			if st.Addr != stage {
				continue
			}
			prev, ok := st.Execution(e.Round)
			if !ok || prev.Status != StatusSucceeded {
				continue
			}
			if prev.Key == e.Key {
				return fmt.Sprintf("run %s has the same inputs, but its outputs were gone or changed on disk.", em.RunID)
			}
			return fmt.Sprintf("the latest earlier run of it, %s, differs: %s.", em.RunID, strings.Join(differences(prev.Inputs, e.Inputs), "; "))
		}
	}
	return fmt.Sprintf("no earlier run executed %s in round %d.", stage, e.Round)
}

// differences lists what changed between two executions' inputs.
func differences(a, b CacheInputs) []string {
	var d []string
	if a.Plugin != b.Plugin {
		d = append(d, fmt.Sprintf("plugin %s, now %s", a.Plugin, b.Plugin))
	}
	if a.PluginVersion != b.PluginVersion {
		d = append(d, fmt.Sprintf("plugin version %s, now %s", a.PluginVersion, b.PluginVersion))
	} else if a.PluginSHA256 != b.PluginSHA256 {
		d = append(d, fmt.Sprintf("the plugin executable was rebuilt (sha256 %.12s, now %.12s)", a.PluginSHA256, b.PluginSHA256))
	}
	d = append(d, configDifferences(a.Config, b.Config)...)
	for _, name := range sortedKeys(a.Files, b.Files) {
		if a.Files[name] != b.Files[name] {
			d = append(d, fmt.Sprintf("the file named by %s changed (sha256 %.12s, now %.12s)", name, orNone(a.Files[name]), orNone(b.Files[name])))
		}
	}
	ports := map[string]bool{}
	for p := range a.Ports {
		ports[p] = true
	}
	for p := range b.Ports {
		ports[p] = true
	}
	var names []string
	for p := range ports {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		x, inA := a.Ports[p]
		y, inB := b.Ports[p]
		switch {
		case !inA:
			d = append(d, fmt.Sprintf("input port %s is new", p))
		case !inB:
			d = append(d, fmt.Sprintf("input port %s is no longer connected", p))
		case strings.Join(x, ",") != strings.Join(y, ","):
			d = append(d, fmt.Sprintf("input port %s received different data", p))
		}
	}
	if len(d) == 0 {
		d = append(d, "the round's inputs")
	}
	return d
}

// configDifferences compares two config values attribute by attribute.
func configDifferences(a, b json.RawMessage) []string {
	if bytes.Equal(a, b) {
		return nil
	}
	var x, y map[string]json.RawMessage
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return []string{"the config"}
	}
	keys := map[string]bool{}
	for k := range x {
		keys[k] = true
	}
	for k := range y {
		keys[k] = true
	}
	var names []string
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var d []string
	for _, k := range names {
		if !bytes.Equal(x[k], y[k]) {
			d = append(d, fmt.Sprintf("config %s was %s, now %s", k, orNull(x[k]), orNull(y[k])))
		}
	}
	if len(d) == 0 {
		d = append(d, "the config's type")
	}
	return d
}

func orNull(v json.RawMessage) string {
	if len(v) == 0 {
		return "unset"
	}
	return string(v)
}

func describePorts(ports map[string][]string) string {
	if len(ports) == 0 {
		return ""
	}
	var names []string
	for p := range ports {
		names = append(names, p)
	}
	sort.Strings(names)
	var parts []string
	for _, p := range names {
		sums := ports[p]
		short := make([]string, len(sums))
		for i, s := range sums {
			short[i] = fmt.Sprintf("%.12s", s)
		}
		parts = append(parts, fmt.Sprintf("%s %s", p, strings.Join(short, "+")))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func sortedKeys(ms ...map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
