"""The HTML discrepancy report: `python -m harness report` (harness/commands/report.py).

- `loading`: read results files from several environments, join by case id, group by cause
- `repro`:   standalone reproducer scripts (plain Keras + NumPy)
- `render`:  view model, HTML (jinja2, templates/), findings.json, atomic writes
"""

from harness.report.loading import ReportInputError, results_paths
from harness.report.render import write

__all__ = ["ReportInputError", "results_paths", "write"]
