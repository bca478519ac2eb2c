"""casabook: hands-on HEP analysis workshops on coffea-casa style analysis facilities."""

__version__ = "0.1.0"
