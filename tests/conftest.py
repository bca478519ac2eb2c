"""The stack's fixtures (hub_factory, materials_repo) for every test module: casabook.testing.fixtures."""

pytest_plugins = ["casabook.testing.fixtures"]
