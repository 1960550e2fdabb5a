/// The Swift client library for a Quiver cluster; the `quiver` command line uses it.
enum QuiverClientModule {}
