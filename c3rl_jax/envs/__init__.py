"""Environments: gymnax `Environment` subclasses whose parameters may carry an agent axis."""
