"""Learners, batched over a leading agent axis."""
