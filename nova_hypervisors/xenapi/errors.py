"""XenAPI failures as Nova exceptions.

One place knows which XenAPI error code means which ``nova.exception``;
everything above the session speaks Nova.  The XenAPI code and arguments
always stay in the message (operators search for them), except session
refs, which are secrets: whoever holds one acts as root on the pool.
"""

from __future__ import annotations

from nova import exception

# XenAPI error codes that mean "the pool master is moving": the call was not
# performed, and the session must find the new master and try again.
MASTER_CHANGING = frozenset({'HOST_IS_SLAVE', 'HOST_STILL_BOOTING'})

# Codes that mean the call was refused without doing anything, only because
# something else is busy: always safe to repeat a little later.  xapi's
# TOO_BUSY refuses a request when too many are queued (errors.json: "The
# request was rejected because the server is too busy").
BUSY = frozenset({'OTHER_OPERATION_IN_PROGRESS', 'TOO_BUSY'})
# What an Async task may end with and be run again a little later: busy,
# or a host whose toolstack is still starting.
TRANSIENT = BUSY | {'HOST_STILL_BOOTING'}

_NOT_FOUND = frozenset({'HANDLE_INVALID', 'UUID_INVALID'})
_STATE = frozenset(
    {
        'VM_BAD_POWER_STATE',
        'OPERATION_NOT_ALLOWED',
        'VM_IS_TEMPLATE',
        'OTHER_OPERATION_IN_PROGRESS',
    }
)
_STORAGE_PREFIXES = ('SR_', 'VDI_', 'VBD_')


def scrub(text: str, secrets: set[str]) -> str:
    """Replace every known session ref in ``text`` by a placeholder."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, '<session>')
    return text


class XenAPIError(exception.NovaException):
    """A XenAPI failure with no closer Nova meaning."""

    msg_fmt = 'XenAPI error %(code)s %(args)s in %(method)s'


def failure_message(method: str, details: list, secrets: set[str]) -> str:
    """``'XenAPI VM_BAD_POWER_STATE [vm, Halted, Running] in VM.start'``."""
    code = str(details[0]) if details else 'UNKNOWN'
    args = [str(a) for a in details[1:]]
    if code == 'SESSION_INVALID':
        # The only argument is the session ref itself.
        args = ['<session>' for _ in args]
    text = 'XenAPI %s [%s] in %s' % (code, ', '.join(args), method)
    return scrub(text, secrets)


def translate(method: str, details: list, secrets: set[str]) -> Exception:
    """The ``nova.exception`` matching a XenAPI failure.

    The returned exception carries ``xenapi_code`` and ``xenapi_args`` so
    callers may branch on the code without parsing messages.
    """
    code = str(details[0]) if details else 'UNKNOWN'
    message = failure_message(method, details, secrets)
    if code in _NOT_FOUND:
        exc = exception.NotFound(message=message)
    elif code == 'HOST_NOT_ENOUGH_FREE_MEMORY':
        exc = exception.ComputeResourcesUnavailable(reason=message)
    elif code in _STATE:
        exc = exception.InstanceInvalidState(message=message)
    elif code == 'SESSION_AUTHENTICATION_FAILED':
        exc = exception.Forbidden(message=message)
    elif code in MASTER_CHANGING:
        exc = exception.HypervisorUnavailable(message=message)
    elif code.startswith(_STORAGE_PREFIXES):
        exc = exception.StorageError(reason=message)
    else:
        exc = XenAPIError(message=message)
    exc.xenapi_code = code
    exc.xenapi_args = list(details[1:])
    return exc


def code_of(exc: BaseException) -> str | None:
    """The XenAPI error code behind a translated exception, if any."""
    return getattr(exc, 'xenapi_code', None)
