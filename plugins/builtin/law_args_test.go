package builtin

import "testing"

// What the host asks is what the tool reads: every field of a LawConfig
// survives ToolArgs and the tool's parser, a file named like a flag
// included, and an empty config keeps the flags' defaults.
func TestLawToolArgsRoundTrip(t *testing.T) {
	for _, want := range []LawConfig{
		{Path: "-runs.csv", Format: "csv", Size: "n", Data: "d", Metric: "val_loss", Run: "seed",
			Accuracy: true, Budget: 1.5e15, HasBudget: true, K: 2.5, Target: 0.25, HasTarget: true,
			Confidence: 0.8, Bootstrap: 17, Seed: 99, JSON: true},
		func() LawConfig { c := DefaultLawConfig(); c.Path = "runs.csv"; return c }(),
	} {
		got, err := parseLawArgs(want.ToolArgs())
		if err != nil {
			t.Fatalf("%+v: %v", want, err)
		}
		if got != want {
			t.Errorf("sent %+v, the tool read %+v", want, got)
		}
	}
	if c, err := parseLawArgs([]string{"fit", "runs.csv"}); err != nil || c.Confidence != 0.9 || c.Bootstrap != 200 || c.Seed != 1 || c.K != 6 {
		t.Errorf("defaults %+v (%v), want confidence 0.9, bootstrap 200, seed 1, K 6 as docs/law.md says", c, err)
	}
}
