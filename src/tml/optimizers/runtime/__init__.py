"""The torch runtime: LRShim, CombinedOptimizer, FlatOptimizer, kernel choice, tensor learning rates."""
