"""Validation: every notebook run with papermill as an attendee's session on each facility would run
it (matrix.py), each run in its own kernel from a fork server (pool.py, run.py, preload.py), after
the checks that need no kernel (checks.py), into a JSON and HTML report (report.py)."""
