"""Datasets: typed frames and the readers and writers that produce them."""
