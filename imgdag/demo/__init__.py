"""The built-in demo datasets, generated in the real archive layouts."""
