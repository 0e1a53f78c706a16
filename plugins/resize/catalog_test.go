package resize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// zooWorld is a made-up zoo of three families whose accuracy rises with
// size along a different curve each, with seeded noise that leaves
// non-monotone stretches, as real measurements do.
func zooWorld(seed uint64) (space []tables.Candidate, acc map[string]float64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	acc = map[string]float64{}
	fams := []struct {
		name        string
		base, scale float64
		n           int
	}{{"small", 200, 0.9, 40}, {"wide", 500, 0.95, 50}, {"deep", 300, 0.97, 45}}
	for _, f := range fams {
		for i := range f.n {
			params := int64(f.base * math.Pow(1.2, float64(i)))
			name := fmt.Sprintf("%s-%d", f.name, i)
			space = append(space, tables.Candidate{ID: name, Name: name, Family: f.name, Kind: tables.KindTable, Size: float64(params), Params: params})
			q := f.scale - 0.5*math.Pow(float64(params)/float64(f.base), -0.4) + 0.012*rng.NormFloat64()
			acc[name] = math.Min(math.Max(q, 0), 1)
		}
	}
	return space, acc
}

// truthSmallest is the smallest model meeting the target by a scan of
// every model, and the next larger one: the search's ground truth.
func truthSmallest(space []tables.Candidate, acc map[string]float64, target float64, family string) (first, second string) {
	var meet []tables.Candidate
	for _, c := range space {
		if acc[c.Name] >= target && (family == "" || c.Family == family) {
			meet = append(meet, c)
		}
	}
	slices.SortFunc(meet, func(a, b tables.Candidate) int {
		if a.Params != b.Params {
			return int(a.Params - b.Params)
		}
		return 0
	})
	if len(meet) > 0 {
		first = meet[0].Name
	}
	if len(meet) > 1 {
		second = meet[1].Name
	}
	return first, second
}

// catalogLoop runs the catalog search as the host runs the loop: round 0
// is the two ends and the middle of each family, each round's proposals
// are looked up, until the decision is not continue.
func catalogLoop(t *testing.T, cfg Config, space []tables.Candidate, acc map[string]float64) (*decision, int) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Stage).s
	var trials []trial
	look := func(c tables.Candidate) {
		for _, t := range trials {
			if t.cand.Name == c.Name {
				panic("proposed twice: " + c.Name)
			}
		}
		trials = append(trials, trial{cand: c, status: tables.StatusOK, accuracy: acc[c.Name], loss: math.NaN(),
			latencyMs: math.NaN(), trainSecs: 0, modelBytes: math.NaN()})
	}
	byFamily := map[string][]tables.Candidate{}
	for _, c := range space {
		byFamily[c.Family] = append(byFamily[c.Family], c)
	}
	for _, f := range byFamily {
		look(f[0])
		look(f[len(f)/2])
		look(f[len(f)-1])
	}
	for round := 1; round <= 100; round++ {
		d, err := decide(s, trials, nil, space...)
		if err != nil {
			t.Fatal(err)
		}
		if d.status != StatusContinue {
			return d, len(trials)
		}
		for _, p := range d.proposals {
			if _, ok := acc[p.Name]; !ok {
				t.Fatalf("round %d proposed %q, which is not a model of the space", round, p.Name)
			}
			look(p)
		}
	}
	t.Fatal("no decision in 100 rounds")
	return nil, 0
}

func TestCatalogSearchFindsTheSmallestRealModel(t *testing.T) {
	hits, runs := 0, 0
	for seed := uint64(1); seed <= 5; seed++ {
		space, acc := zooWorld(seed)
		for _, target := range []float64{0.6, 0.7, 0.75, 0.8, 0.85, 0.88} {
			d, used := catalogLoop(t, Config{MinAccuracy: ptr(target)}, space, acc)
			first, second := truthSmallest(space, acc, target, "")
			runs++
			if first == "" {
				if d.status != StatusInfeasible {
					t.Errorf("seed %d, target %g: status %s, want infeasible (nothing meets it)", seed, target, d.status)
				}
				continue
			}
			if d.status != StatusConverged || d.chosen == nil {
				t.Errorf("seed %d, target %g: status %s, want converged on %s", seed, target, d.status, first)
				continue
			}
			got := d.chosen.rep.cand.Name
			if acc[got] < target {
				t.Errorf("seed %d, target %g: chose %s at %.3f, below the target", seed, target, got, acc[got])
			}
			if got == first || got == second {
				hits++
			} else {
				t.Logf("seed %d, target %g: chose %s, truth %s then %s (%d lookups of %d models)", seed, target, got, first, second, used, len(space))
			}
			if used >= len(space) {
				t.Errorf("seed %d, target %g: %d lookups for %d models, no cheaper than looking at all", seed, target, used, len(space))
			}
		}
	}
	if hits*10 < runs*9 {
		t.Errorf("smallest or next larger model in %d of %d searches, want at least 90%%", hits, runs)
	}
}

func TestCatalogPerFamilyAnswers(t *testing.T) {
	space, acc := zooWorld(3)
	d, _ := catalogLoop(t, Config{MinAccuracy: ptr(0.8), PerFamily: true}, space, acc)
	if d.status != StatusConverged {
		t.Fatalf("status %s: %s", d.status, d.reason)
	}
	for _, fam := range []string{"small", "wide", "deep"} {
		first, second := truthSmallest(space, acc, 0.8, fam)
		want := fmt.Sprintf("%q:{\"name\":%q", fam, first)
		alt := fmt.Sprintf("%q:{\"name\":%q", fam, second)
		if first != "" && !contains(d.familyAnswers, want) && !contains(d.familyAnswers, alt) {
			t.Errorf("family %s: answers %s, want %s (or %s)", fam, d.familyAnswers, first, second)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// A family whose candidates leave the parameter count to the trainer
// (params 0, ordered by their size axis) is explained by what was
// measured: the largest smaller model that misses is the next one down
// the axis, never a larger one whose axis value sorts below the chosen
// model's parameter count.
func TestCatalogReasonOrdersByTheFamilysAxis(t *testing.T) {
	acc := map[float64]float64{1: 0.70, 2: 0.76, 3: 0.81, 4: 0.81, 16: 0.84}
	var space []tables.Candidate
	var trials []trial
	for _, size := range []float64{1, 2, 3, 4, 16} {
		name := fmt.Sprintf("convnet-c%g", size)
		c := tables.Candidate{ID: name, Name: name, Family: "convnet", Kind: tables.KindAxis, Size: size}
		space = append(space, c)
		measured := c
		measured.Params = int64(1000 * size) // what the trainer counted
		trials = append(trials, trial{cand: measured, status: tables.StatusOK, accuracy: acc[size], loss: math.NaN(),
			latencyMs: math.NaN(), modelBytes: math.NaN()})
	}
	st, err := New(Config{MinAccuracy: ptr(0.8)})
	if err != nil {
		t.Fatal(err)
	}
	d, err := decide(st.(*Stage).s, trials, nil, space...)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusConverged || d.chosen == nil || d.chosen.rep.cand.Name != "convnet-c3" {
		t.Fatalf("status %s, chosen %v: %s", d.status, d.chosen, d.reason)
	}
	if !strings.Contains(d.reason, "miss it: convnet-c2 0.760") || strings.Contains(d.reason, "convnet-c16") {
		t.Errorf("the reason does not name convnet-c2 as the largest smaller miss:\n%s", d.reason)
	}
}
