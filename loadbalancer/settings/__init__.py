"""The validated configuration: frozen dataclasses (`records`) and the validation helpers.

Primitive: imports nothing of the project. The top-level `config.py` reads `providers.json`
and builds these records with the helpers in `validation`; every other module only reads them.
"""
