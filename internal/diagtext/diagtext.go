// Package diagtext renders HCL diagnostics for people: HCL's own text
// writer (source snippet, highlighted range, detail), with the location in
// the file:line:col form that editors and terminals turn into links.
package diagtext

import (
	"bytes"
	"fmt"
	"io"
	"regexp"

	"github.com/hashicorp/hcl/v2"
)

// locationLine matches the writer's "on FILE line N" location.
var locationLine = regexp.MustCompile(`(?m)^(\s*on )(.+) line (\d+)(,| in |:|$)`)

// Write renders diags to w. files supplies the sources for snippets; width
// wraps the detail text (0 means no wrapping). Lines longer than 200
// characters show the part around the problem (clip.go).
func Write(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	for _, d := range diags {
		var buf bytes.Buffer
		if err := hcl.NewDiagnosticTextWriter(&buf, files, width, color).WriteDiagnostic(d); err != nil {
			return err
		}
		out := buf.Bytes()
		line, col := 0, 0
		if d.Subject != nil {
			line, col = d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = clipLines(out, line, col)
		if d.Subject != nil {
			done := false
			out = locationLine.ReplaceAllFunc(out, func(m []byte) []byte {
				if done {
					return m
				}
				done = true
				sub := locationLine.FindSubmatch(m)
				return fmt.Appendf(nil, "%s%s:%d:%d%s", sub[1], d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sub[4])
			})
		}
		if _, err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}
