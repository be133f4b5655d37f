package sim

import "testing"

func TestZZProf(t *testing.T) {
	p, _ := ParseProfile("all")
	for s := uint64(100); s < 120; s++ {
		Run(Config{Seed: s, Faults: p})
	}
}
