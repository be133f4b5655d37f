//go:build race

package sim

// raceEnabled: the race detector slows runs down about tenfold.
const raceEnabled = true
