package main

// The trainer's sharded head is the library's.

import "github.com/marginloss/marginloss/loss"

type (
	// ShardedHead is this rank's part of the class-sharded margin head.
	ShardedHead = loss.ShardedHead
	// ShardStats are a shard's per-row statistics, reduced across ranks.
	ShardStats = loss.ShardStats
)

// MergeShardStats combines all-gathered statistics (the -stats allgather path).
var MergeShardStats = loss.MergeShardStats
