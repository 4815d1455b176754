"""Sphinx configuration of the nova_hypervisors documentation."""

project = 'nova_hypervisors'
copyright = 'the nova_hypervisors developers'
extensions = [
    # .. show-options:: the options of a namespace, with their help
    'oslo_config.sphinxext',
    # the sample nova.conf section, written from the options at each build
    'oslo_config.sphinxconfiggen',
]
config_generator_config_file = (
    '../../etc/oslo-config-generator/nova-hypervisors.conf'
)
sample_config_basename = '_static/nova-hypervisors'
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = ['_static']
pygments_style = 'sphinx'
