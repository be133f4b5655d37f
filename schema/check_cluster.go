package schema

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kelpie/kelpie/kv"
)

// clusterEntries are the claims and claim log entries Check read.
type clusterEntries struct {
	claims  map[string]uint64            // actor -> fence epoch
	damaged map[string]bool              // actors whose claim is damaged
	log     map[string]map[uint64]string // actor -> epoch -> node ("" when damaged)
}

func (r *clusterEntries) add(c *checker, f *Family, e Entry) {
	if r.claims == nil {
		r.claims, r.damaged, r.log = map[string]uint64{}, map[string]bool{}, map[string]map[uint64]string{}
	}
	k := string(e.Key[len(f.Prefix):])
	switch f {
	case ClusterNodes:
		decodeInto[ClusterNode](c, e, "cluster node")
	case ClusterClaims:
		if e.Damaged {
			r.damaged[k] = true
			return
		}
		epoch, err := kv.ParseEpoch(e.Value)
		if err != nil {
			c.report("", "%q: %v", e.Key, err)
			r.damaged[k] = true
			return
		}
		r.claims[k] = epoch
	case ClusterClaimLog:
		i := strings.LastIndexByte(k, '/')
		epoch, err := strconv.ParseUint(k[i+1:], 16, 64)
		if i < 0 || err != nil {
			c.report("", "%q: not a claim log key", e.Key)
			return
		}
		actor := k[:i]
		if r.log[actor] == nil {
			r.log[actor] = map[uint64]string{}
		}
		node := ""
		if cl := decodeInto[ClusterClaim](c, e, "cluster claim"); cl != nil {
			node = cl.Node
			if cl.Epoch != epoch {
				c.report("", "%q records epoch %d", e.Key, cl.Epoch)
			}
		}
		r.log[actor][epoch] = node
	}
}

// check: each actor's claim epoch is recorded in its claim log, and no log
// entry is newer than the claim (a claim and its entry are written
// together).
func (r *clusterEntries) check(c *checker) {
	for actor, epoch := range r.claims {
		if _, ok := r.log[actor][epoch]; !ok {
			c.report("", "actor %s is claimed at epoch %d, which its claim log lacks", actor, epoch)
		}
	}
	for actor, entries := range r.log {
		if r.damaged[actor] {
			continue
		}
		claimed, ok := r.claims[actor]
		for epoch := range entries {
			if !ok || epoch > claimed {
				c.report("", "claim log of actor %s has epoch %d, newer than its claim (%s)", actor, epoch, claimText(claimed, ok))
			}
		}
	}
}

func claimText(epoch uint64, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("epoch %d", epoch)
}
