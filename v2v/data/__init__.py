"""Label sets, synthetic sample clips with ground truth, and (later) clip datasets."""
