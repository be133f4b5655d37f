package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kelpie/kelpie/actor"
	"github.com/kelpie/kelpie/agent"
	"github.com/kelpie/kelpie/cluster"
	"github.com/kelpie/kelpie/kv"
	"github.com/kelpie/kelpie/schema"
)

// clusterConfig is the part of serveConfig that makes a node of a cluster.
type clusterConfig struct {
	nodeID        string
	advertiseAddr string
	secretFile    string
	leaseTTL      time.Duration
}

// clusterFlags defines the cluster's flags of 'kelpie serve'.
func clusterFlags(fs *flag.FlagSet, c *clusterConfig, bad *envErrors) {
	fs.StringVar(&c.nodeID, "node-id", env("KELPIE_NODE_ID", ""),
		"run as this node of a cluster on one --storage postgres database; unique per node; empty: run alone (env KELPIE_NODE_ID)")
	fs.StringVar(&c.advertiseAddr, "advertise-addr", env("KELPIE_ADVERTISE_ADDR", ""),
		"host:port at which the other nodes reach this one's API, for the requests they forward (env KELPIE_ADVERTISE_ADDR)")
	fs.StringVar(&c.secretFile, "cluster-secret-file", env("KELPIE_CLUSTER_SECRET_FILE", ""),
		fmt.Sprintf("file holding the secret (at least %d bytes) every node of the cluster shares, which signs forwarded requests (env KELPIE_CLUSTER_SECRET_FILE)", cluster.MinSecretBytes))
	fs.DurationVar(&c.leaseTTL, "lease-ttl", bad.duration("KELPIE_LEASE_TTL", cluster.DefaultLeaseTTL),
		"a node that has not renewed its lease for this long loses its agents to the others; it stops serving them after 4/5 of it (env KELPIE_LEASE_TTL)")
}

// joinCluster makes this process a node of the cluster when --node-id is
// set; nil otherwise. svc is filled in once the service exists, for the
// node's activation count.
func joinCluster(ctx context.Context, c serveConfig, store kv.Store, log *slog.Logger, svc *atomic.Pointer[agent.Service]) (*cluster.Node, error) {
	cc := c.cluster
	if cc.nodeID == "" {
		if cc.advertiseAddr != "" || cc.secretFile != "" {
			return nil, errors.New("--advertise-addr and --cluster-secret-file need --node-id")
		}
		return nil, nil
	}
	if c.storage != "postgres" {
		return nil, fmt.Errorf("--node-id needs --storage postgres: the nodes of a cluster share one database (got %q)", c.storage)
	}
	if cc.advertiseAddr == "" || cc.secretFile == "" {
		return nil, errors.New("--node-id needs --advertise-addr and --cluster-secret-file")
	}
	secret, err := os.ReadFile(cc.secretFile)
	if err != nil {
		return nil, fmt.Errorf("--cluster-secret-file: %w", err)
	}
	node, err := cluster.Join(ctx, cluster.Config{
		Store: store, NodeID: cc.nodeID, Addr: cc.advertiseAddr, Secret: []byte(strings.TrimSpace(string(secret))),
		LeaseTTL: cc.leaseTTL, Logger: log,
		Activations: func() int {
			if s := svc.Load(); s != nil {
				return s.Counts().Runtime.Active
			}
			return 0
		},
		Placed: func(namespace string) bool { return namespace == schema.AgentNamespace },
		OnTakeover: func(id actor.ID) {
			s := svc.Load()
			if s == nil {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), takeoverCloseTimeout)
			defer cancel()
			if err := s.Agents.CloseInterruptedRun(ctx, id.Key); err != nil {
				log.Warn("closing the run a taken-over agent's old owner left in progress failed; its next turn closes it", "agent", id.Key, "err", err)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	log.Info("joined the cluster", "node", cc.nodeID, "advertise_addr", cc.advertiseAddr, "lease_ttl", node.LeaseTTL())
	return node, nil
}

// leaveCluster removes the node's record once it has stopped serving, so
// that the others may claim its agents at once.
// takeoverCloseTimeout bounds closing the run a taken-over agent's old
// owner left in progress (it waits for the agent's turn lock).
const takeoverCloseTimeout = time.Minute

func leaveCluster(node *cluster.Node, log *slog.Logger) {
	if node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), serviceCloseTimeout)
	defer cancel()
	if err := node.Leave(ctx); err != nil {
		log.Warn("leaving the cluster: the node's record stays until its lease lapses", "err", err)
	}
}
