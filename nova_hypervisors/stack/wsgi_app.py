"""The WSGI entry gunicorn loads: one OpenStack API, named by environment.

gunicorn imports ``nova_hypervisors.stack.wsgi_app:application``; the real
application module comes from ``NOVA_HYPERVISORS_WSGI_APP`` (for example
``keystone.wsgi.api``).  keystone and nova-api parse ``sys.argv`` with
oslo.config when they are imported and fail on gunicorn's own arguments, so
the arguments are cleared first: the services take their configuration
from their ``OS_*_CONFIG_DIR`` variables instead, or (Cinder) from the
arguments in ``NOVA_HYPERVISORS_WSGI_ARGV``.
"""

import importlib
import json
import os
import sys

sys.argv = sys.argv[:1] + json.loads(
    os.environ.get('NOVA_HYPERVISORS_WSGI_ARGV') or '[]'
)
application = importlib.import_module(
    os.environ['NOVA_HYPERVISORS_WSGI_APP']
).application
