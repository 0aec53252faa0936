"""The benchmark's reports, each from the one JSON-able report dict.

- `summary`: verdicts, ratios and derived numbers, assembled into that dict;
- `markdown`: `results.md` (also printed);
- `json`: `results.json`, every number;
- `plot`: `results.png`, images/s per variant and augframe's epoch times.
"""
