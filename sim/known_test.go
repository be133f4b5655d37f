package sim

import "testing"

// knownDefects are the known defects (known.go), each with a profile under
// which the simulation sees it.
var knownDefects = []struct{ name, profile string }{
	{shortMessagePages, "llm"},
}

// TestKnownDefects: each known defect is still seen. Once one is not, its
// bug is fixed: remove its exemption and its entry here.
func TestKnownDefects(t *testing.T) {
	for _, defect := range knownDefects {
		t.Run(defect.name, func(t *testing.T) {
			for seed := uint64(1); seed <= maxSeedsToCatch; seed++ {
				if r := Run(Config{Seed: seed, Faults: MustProfile(defect.profile)}); r.Known[defect.name] > 0 {
					t.Logf("%s seen after %d seed(s)", defect.name, seed)
					return
				}
			}
			t.Errorf("known defect %s not seen in %d seeds: if its bug is fixed, remove its exemption (known.go)", defect.name, maxSeedsToCatch)
		})
	}
}
