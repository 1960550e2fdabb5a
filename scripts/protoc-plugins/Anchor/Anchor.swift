// Intentionally empty: this package exists only to build protoc plugins.
