"""Synthesis with a trained generator: streaming (constant-memory) video generation and its demos."""
