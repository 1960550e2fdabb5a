/// Transport-free cluster logic: shard maps, list placement, scatter plans and result merging. Plain values and functions that tests drive without sockets.
enum QuiverClusterModule {}
