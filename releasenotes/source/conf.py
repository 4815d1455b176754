"""Sphinx configuration of the nova_hypervisors release notes (reno)."""

project = 'nova_hypervisors release notes'
copyright = 'the nova_hypervisors developers'
extensions = ['reno.sphinxext']
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
