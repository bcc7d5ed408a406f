"""dl_theory: the claims of deep-learning theory as executable JAX experiments."""

__version__ = "0.1.0"
