/// The coordinator service: collections, training, placement, bulk loading and scatter/gather search over the workers.
enum QuiverCoordinatorModule {}
