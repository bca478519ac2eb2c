"""What casabook's tests and benchmarks share to drive the real stack: throw-away workshops
(workshops), generated notebooks for the validation matrix (matrix), git repositories of materials
(materials), hosted-looking remotes (remotes), a started hub with an attendee's and an organiser's
drivers (hub), a hub with extra config lines (tuned), and the pytest fixtures over them (fixtures,
loaded by tests/conftest.py).

Test support only: nothing under casabook's commands imports it.
"""
