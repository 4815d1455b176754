"""Operator hints for refused pool joins name real xapi error codes."""

import json
import pathlib

from nova_hypervisors.simulators import xapi as simulator
from nova_hypervisors.xenapi.pool import reconcile

ERRORS = pathlib.Path(simulator.__file__).parent / 'data' / 'errors.json'


def test_every_hint_is_for_an_error_code_xapi_has():
    """The codes come from xapi's published error list (errors.json)."""
    known = set(json.loads(ERRORS.read_text()))
    assert set(reconcile._HINTS) <= known


def test_the_join_refusals_an_operator_meets_have_hints():
    for code in (
        'JOINING_HOST_CANNOT_BE_MASTER_OF_OTHER_HOSTS',
        'JOINING_HOST_CANNOT_CONTAIN_SHARED_SRS',
        'LICENCE_RESTRICTION',
        'LICENSE_DOES_NOT_SUPPORT_POOLING',
        'POOL_JOINING_HOST_MUST_HAVE_SAME_PRODUCT_VERSION',
    ):
        assert code in reconcile._HINTS
