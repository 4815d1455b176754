"""XenAPI failures, checked against ``errors.json``.

A handler raises :class:`XapiFailure`; the wire layer turns it into a
``Failure`` envelope.  Every code that ``errors.json`` knows must carry the
number of arguments it lists, so a test exercising a path also proves that
its error has xapi's shape.
"""

from __future__ import annotations

from nova_hypervisors.simulators.xapi import datamodel


class XapiFailure(Exception):
    """``[CODE, arg, ...]`` as xapi would send it."""

    def __init__(self, code: str, *args: object) -> None:
        arity = datamodel.load().error_arity(code)
        text_args = [_text(a) for a in args]
        if arity is not None and arity != len(text_args):
            raise ValueError(
                'XenAPI error %s takes %d arguments (%s), not %r'
                % (
                    code,
                    arity,
                    ', '.join(datamodel.load().errors[code]),
                    text_args,
                )
            )
        super().__init__(code, *text_args)
        self.code = code
        self.args_ = text_args

    @classmethod
    def raw(cls, description: list[str]) -> XapiFailure:
        """Any error list, unchecked: what a fault injection asks for."""
        failure = cls.__new__(cls)
        Exception.__init__(failure, *description)
        failure.code = str(description[0])
        failure.args_ = [_text(a) for a in description[1:]]
        return failure

    @property
    def description(self) -> list[str]:
        """The ``ErrorDescription`` array."""
        return [self.code, *self.args_]

    def __str__(self) -> str:
        return '%s %s' % (self.code, self.args_)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    return str(value)


def handle_invalid(cls: str, ref: str) -> XapiFailure:
    return XapiFailure('HANDLE_INVALID', cls, ref)


def bad_power_state(vm: str, expected: list[str], actual: str) -> XapiFailure:
    """``VM_BAD_POWER_STATE`` with xapi's lower-case state names."""
    return XapiFailure(
        'VM_BAD_POWER_STATE',
        vm,
        ', '.join(s.lower() for s in expected),
        actual.lower(),
    )


def operation_not_allowed(reason: str) -> XapiFailure:
    return XapiFailure('OPERATION_NOT_ALLOWED', reason)
