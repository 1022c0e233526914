"""Turning videos into training data: frames (extract), and later conditioning maps and flow."""
