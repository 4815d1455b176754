"""vSphere failures as Nova exceptions, at the driver boundary.

The fault's name and message travel in the Nova exception's message and the
original exception stays chained, so operators see vCenter's reason.
"""

from collections.abc import Callable
import functools
import inspect
from typing import Any

from nova import exception
from pyVmomi import vim
from pyVmomi import vmodl

from nova_hypervisors.vmwareapi import session as vc_session


def translate(function: Callable) -> Callable:
    """Turn vSphere errors raised by ``function`` into Nova's."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except exception.NovaException:
            raise
        except vc_session.TaskFailed as error:
            raise exception.NovaException(f'vCenter task {error}') from error
        except vc_session.TaskTimeout as error:
            raise exception.NovaException(str(error)) from error
        except vmodl.fault.ManagedObjectNotFound as error:
            raise exception.NovaException(
                f'vCenter object vanished: {error.obj}'
            ) from error
        except (vim.fault.VimFault, vmodl.MethodFault) as error:
            raise exception.NovaException(
                f'vCenter refused {function.__name__}: '
                f'{type(error).__name__}: {getattr(error, "msg", "")}'
            ) from error

    # Nova's signature test reads the wrapper: show it the real arguments.
    wrapper.__signature__ = inspect.signature(function)
    return wrapper
