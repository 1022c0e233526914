"""Small tensor operations shared by every part of the project (warping, shape checks)."""
