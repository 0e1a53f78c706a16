package fit

import (
	"fmt"
	"gonum.org/v1/gonum/optimize"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestExplore(t *testing.T) {
	truth := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	one := 1.0
	for _, npts := range []int{8, 15} {
		for _, sigma := range []float64{0.005, 0.01, 0.02} {
			hitQ, hitA, hitAl, hitB := 0, 0, 0, 0
			start := time.Now()
			for seed := range 20 {
				rng := rand.New(rand.NewPCG(uint64(seed), 99))
				var n, q []float64
				for i := range npts {
					N := 100 * math.Pow(1000, float64(i)/float64(npts-1))
					n = append(n, N)
					v := truth.At(N) + sigma*rng.NormFloat64()
					q = append(q, math.Min(v, 1))
				}
				f, err := FitPowerLaw(n, q, Options{Confidence: 0.95, Seed: uint64(seed), QMax: &one})
				if err != nil {
					t.Fatal(err)
				}
				if f.QInfCI.Contains(truth.QInf) {
					hitQ++
				}
				if f.ACI.Contains(truth.A) {
					hitA++
				}
				if f.AlphaCI.Contains(truth.Alpha) {
					hitAl++
				}
				if f.Band(3000).Contains(truth.At(3000)) {
					hitB++
				}
				if seed == 0 {
					t.Logf("fit %+v qci %+v aci %+v alci %+v reps %d conv %v", f.PowerLaw, f.QInfCI, f.ACI, f.AlphaCI, len(f.Replicates), f.Converged)
				}
			}
			t.Logf("n=%d sigma=%g coverage q %d a %d alpha %d band %d /20 in %v", npts, sigma, hitQ, hitA, hitAl, hitB, time.Since(start))
		}
	}
}

func TestExploreStatus(t *testing.T) {
	counts := map[string]int{}
	debugStatus = func(s optimize.Status, err error) { counts[fmt.Sprint(s, " ", err)]++ }
	defer func() { debugStatus = nil }()
	truth := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	one := 1.0
	rng := rand.New(rand.NewPCG(1, 99))
	var n, q []float64
	for i := range 8 {
		N := 100 * math.Pow(1000, float64(i)/7)
		n = append(n, N)
		q = append(q, math.Min(truth.At(N)+0.005*rng.NormFloat64(), 1))
	}
	f, _ := FitPowerLaw(n, q, Options{Confidence: 0.95, QMax: &one, Bootstrap: 20})
	t.Log(counts, f.Converged)
}
