"""What casabook's tests and benchmarks share to drive the real stack: throw-away workshops
(workshops), git repositories of materials (materials), a started hub with an attendee's and an
organiser's drivers (hub), and the pytest fixtures over them (fixtures, loaded by tests/conftest.py).

Test support only: nothing under casabook's commands imports it.
"""
