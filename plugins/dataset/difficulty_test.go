package dataset

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mat"
)

// difficulty scores a table twice on a fixed 80/20 split: with a linear
// model (least squares for regression, multinomial logistic regression for
// classes) and with 15-nearest-neighbours, a nonparametric stand-in for a
// model of ample capacity. Classification scores are accuracies; regression
// scores are R².
func difficulty(t *Table) (linear, nonlinear float64) {
	strata, ns := t.Strata()
	parts := StratifiedSplit(strata, ns, 0.2, 0, 99)
	var train, test []int
	for i, p := range parts {
		if p == Test {
			test = append(test, i)
		} else {
			train = append(train, i)
		}
	}
	d := len(t.Features)
	row := func(i int) []float64 {
		r := make([]float64, d+1)
		r[0] = 1
		for j := range d {
			r[j+1] = t.Features[j][i]
		}
		return r
	}
	outs := 1
	if t.Task == Classification {
		outs = t.Classes
	}
	target := func(i int) []float64 {
		y := make([]float64, outs)
		if t.Task == Classification {
			y[t.Labels[i]] = 1
		} else {
			y[0] = t.Values[i]
		}
		return y
	}
	X := mat.NewDense(len(train), d+1, nil)
	Y := mat.NewDense(len(train), outs, nil)
	for k, i := range train {
		X.SetRow(k, row(i))
		Y.SetRow(k, target(i))
	}
	var W mat.Dense
	if err := W.Solve(X, Y); err != nil {
		panic(err)
	}
	if t.Task == Classification {
		softmaxFit(X, Y, &W)
	}
	predictLinear := func(i int) []float64 {
		var p mat.Dense
		p.Mul(mat.NewDense(1, d+1, row(i)), &W)
		return p.RawRowView(0)
	}
	predictKNN := func(i int) []float64 {
		const k = 15
		type nb struct {
			dist float64
			i    int
		}
		nbs := make([]nb, 0, len(train))
		for _, j := range train {
			s := 0.0
			for f := range d {
				df := t.Features[f][i] - t.Features[f][j]
				s += df * df
			}
			nbs = append(nbs, nb{s, j})
		}
		sort.Slice(nbs, func(a, b int) bool { return nbs[a].dist < nbs[b].dist })
		p := make([]float64, outs)
		for _, n := range nbs[:k] {
			for o, v := range target(n.i) {
				p[o] += v / k
			}
		}
		return p
	}
	score := func(predict func(int) []float64) float64 {
		if t.Task == Classification {
			right := 0
			for _, i := range test {
				p := predict(i)
				best := 0
				for o := range p {
					if p[o] > p[best] {
						best = o
					}
				}
				if int64(best) == t.Labels[i] {
					right++
				}
			}
			return float64(right) / float64(len(test))
		}
		mean := 0.0
		for _, i := range test {
			mean += t.Values[i]
		}
		mean /= float64(len(test))
		var ssRes, ssTot float64
		for _, i := range test {
			ssRes += math.Pow(t.Values[i]-predict(i)[0], 2)
			ssTot += math.Pow(t.Values[i]-mean, 2)
		}
		return 1 - ssRes/ssTot
	}
	return score(predictLinear), score(predictKNN)
}

// softmaxFit refines W into a multinomial logistic regression by full-batch
// gradient descent: the linear classifier a model-size sweep starts from.
func softmaxFit(X, Y *mat.Dense, W *mat.Dense) {
	n, _ := X.Dims()
	var logits, grad mat.Dense
	for range 500 {
		logits.Mul(X, W)
		for i := range n {
			r := logits.RawRowView(i)
			m := r[0]
			for _, v := range r {
				m = math.Max(m, v)
			}
			s := 0.0
			for o := range r {
				r[o] = math.Exp(r[o] - m)
				s += r[o]
			}
			for o := range r {
				r[o] = r[o]/s - Y.At(i, o)
			}
		}
		// Step size 1 on the mean gradient: the features are O(1).
		grad.Mul(X.T(), &logits)
		grad.Scale(1/float64(n), &grad)
		W.Sub(W, &grad)
	}
}
