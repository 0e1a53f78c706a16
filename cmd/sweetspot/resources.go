package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// printResources lists what each execution that ran a plugin took: wall
// time and the plugin process's peak resident memory.
func printResources(w io.Writer, m *runstore.Manifest) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if e.Source != "ran" {
				continue
			}
			if !header {
				fmt.Fprintln(tw, "\nSTAGE\tROUND\tTOOK\tPEAK RSS")
				header = true
			}
			rss := "-"
			if e.PeakRSS > 0 {
				rss = fmt.Sprintf("%.1f MiB", float64(e.PeakRSS)/(1<<20))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Addr, e.Round, e.Took.Round(time.Millisecond), rss)
		}
	}
	return tw.Flush()
}
