"""`mlgit analyze`: the canary against the stable track of one environment, measured by Prometheus.

prometheus.py asks Prometheus's HTTP API; measure.py writes the PromQL of each number; verdict.py compares
the numbers with `environments.<env>.canary.analysis` and says pass, fail or inconclusive. See docs/canary.md.
"""
