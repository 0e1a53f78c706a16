package modelchoice

import (
	"compress/gzip"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// tableSpace reads a table family's file and makes one model per row, a
// family per group value (or one family), each ordered by size.
func tableSpace(f FamilyBlock, path, baseDir string, hp hyper) ([][]tables.Candidate, error) {
	file := f.Path
	if !filepath.IsAbs(file) && baseDir != "" {
		file = filepath.Join(baseDir, file)
	}
	fail := func(format string, args ...any) error {
		return sdk.AttrError(path+".path", "Invalid model table", fmt.Sprintf(format, args...))
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, fail("%v.", err)
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(file, ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return nil, fail("%s: %v.", file, err)
		}
		r = gz
	}
	cr := csv.NewReader(r)
	if f.Format == "tsv" || strings.HasSuffix(strings.TrimSuffix(file, ".gz"), ".tsv") {
		cr.Comma = '\t'
	}
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, fail("%s: %v.", file, err)
	}
	if len(recs) < 2 {
		return nil, fail("%s has no rows under its header.", file)
	}
	header := recs[0]
	index := map[string]int{}
	for i, h := range header {
		index[strings.TrimSpace(h)] = i
	}
	nameCol := f.NameColumn
	if nameCol == "" {
		nameCol = tables.ColName
	}
	paramsCol := f.ParamsCol
	if paramsCol == "" {
		paramsCol = f.Size
	}
	for _, c := range []string{nameCol, f.Size, paramsCol, f.FLOPsCol, f.Group} {
		if _, ok := index[c]; c != "" && !ok {
			return nil, fail("%s: column %q is missing; the header has %s.", file, c, strings.Join(header, ", "))
		}
	}
	family := f.Name
	if family == "" {
		family = strings.TrimSuffix(filepath.Base(strings.TrimSuffix(file, ".gz")), filepath.Ext(strings.TrimSuffix(file, ".gz")))
	}
	byGroup := map[string][]tables.Candidate{}
	var order []string
	seen := map[string]int{}
	for li, rec := range recs[1:] {
		line := li + 2
		cell := func(col string) string {
			if i, ok := index[col]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		num := func(col string) (float64, error) {
			v, err := strconv.ParseFloat(cell(col), 64)
			if err != nil {
				return 0, fail("%s:%d: column %q: %q is not a number.", file, line, col, cell(col))
			}
			return v, nil
		}
		name := cell(nameCol)
		if name == "" {
			return nil, fail("%s:%d: the model has no name (column %q).", file, line, nameCol)
		}
		if prev, dup := seen[name]; dup {
			return nil, fail("%s:%d: the name %q is already used on line %d; names must be unique.", file, line, name, prev)
		}
		seen[name] = line
		size, err := num(f.Size)
		if err != nil {
			return nil, err
		}
		params, err := num(paramsCol)
		if err != nil {
			return nil, err
		}
		if !(size > 0) || !(params >= 1 && params < 1<<62) {
			return nil, fail("%s:%d: model %q has size %g and params %g; both must be positive.", file, line, name, size, params)
		}
		var flops float64
		if f.FLOPsCol != "" {
			if flops, err = num(f.FLOPsCol); err != nil {
				return nil, err
			}
		}
		group := family
		if f.Group != "" {
			group = cell(f.Group)
		}
		knobs := tables.Knobs{}
		for i, h := range header {
			h = strings.TrimSpace(h)
			if i >= len(rec) || h == nameCol || h == f.Group {
				continue
			}
			if v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
				knobs[h] = v
			} else {
				knobs[h] = strings.TrimSpace(rec[i])
			}
		}
		c := tables.Candidate{
			ID: name, Name: name, Family: group, Kind: tables.KindTable, Size: size,
			Params: int64(math.Round(params)), FLOPs: int64(math.Round(flops)), Knobs: knobs,
			LearningRate: hp.learningRate, BatchSize: int32(hp.batchSize), Epochs: int32(hp.epochs),
			Preprocess: tables.None, Quantize: tables.None,
		}
		if _, ok := byGroup[group]; !ok {
			order = append(order, group)
		}
		byGroup[group] = append(byGroup[group], c)
	}
	out := make([][]tables.Candidate, 0, len(order))
	for _, g := range order {
		sortSpace(byGroup[g])
		out = append(out, byGroup[g])
	}
	return out, nil
}
