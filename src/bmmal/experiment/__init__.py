"""Experiments: grids of datasets x strategies x seeds, their results, reports and figures."""
