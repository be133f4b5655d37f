package sim

import "fmt"

// A failed operation is excused only by something that happened to it: a
// fault on its path (path.go) or the crash of the process it was sent to
// while it ran. What the profile could inject elsewhere in the run excuses
// nothing, so a bug cannot hide behind a fault profile.

// causeOf returns what could have made op fail: a fault of one of classes
// on its trail, or the crash of its process before it returned; "" when
// nothing could. A message sent again may be answered with the turn of an
// earlier attempt (which outlives its request), so the earlier attempts'
// trails and processes count too, up to op's return.
func (s *system) causeOf(op *opRecord, classes ...string) string {
	for _, a := range op.attemptsUpTo() {
		if crash := s.crashSeqOf(a.Inc); crash != 0 && crash <= op.Ret {
			return fmt.Sprintf("incarnation %d, which op #%d was sent to, crashed at %d", a.Inc, a.ID, crash)
		}
		// Only a cluster run notes cluster events: a node that crashed,
		// stopped serving or lost its agent while the call ran there, a
		// forward lost on the simulated network.
		for _, class := range append(classes, pathCluster) {
			if f, ok := a.trail.has(class); ok {
				return fmt.Sprintf("op #%d met a fault at %d: %s", a.ID, f.at, f.text)
			}
		}
	}
	return ""
}

// attemptsUpTo returns the attempts of op's logical operation up to op:
// its first attempt, the retries before it, and op.
func (op *opRecord) attemptsUpTo() []*opRecord {
	root := op.first()
	out := []*opRecord{root}
	if root == op {
		return out
	}
	for _, r := range root.Retries {
		out = append(out, r)
		if r == op {
			break
		}
	}
	return out
}

// crashSeqOf returns the logical time incarnation n crashed at, or 0.
func (s *system) crashSeqOf(n int) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all[n].crashSeq.Load()
}
