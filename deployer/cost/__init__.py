"""What an environment costs a month: its footprint (footprint.py), priced (model.py) at the
AWS Price List API's prices or the shipped table's (prices.py, pricelist.py, prices.json),
reported for `nnote-deploy cost` and for `plan`'s changes (report.py)."""
