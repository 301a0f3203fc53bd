"""Promotion through merge requests: pin the digest one environment runs in the next one's overlay.

`mlgit promote --from dev --to staging` commits the new pin on a branch of its own (never touching the
working tree), pushes it and opens or updates the merge request with the evidence a reviewer needs.
See docs/promotion.md for the flow and the GitLab settings it relies on.
"""
