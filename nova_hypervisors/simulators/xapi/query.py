"""xapi's filter language for ``get_all_records_where``.

The grammar is xapi's ``db_filter_parse.mly``::

    expr  ::= value "=" value | expr "and" expr | expr "or" expr
            | "not" expr | "true" | "false" | "(" expr ")"
    value ::= "<literal>" | field "<column>"

``and`` and ``or`` share one precedence and associate to the left; ``not``
binds loosest, so ``not a and b`` means ``not (a and b)`` as in xapi.
Columns are database column names (``name__label``), values are compared as
the strings the database stores (``"true"``, ``"4294967296"``).  A parse
error is ``INVALID_VALUE [expr, reason]`` and an unknown column an
``INTERNAL_ERROR``, as xapi answers.
"""

from __future__ import annotations

from collections.abc import Callable
import re
from typing import Any

from nova_hypervisors.simulators.xapi import codec
from nova_hypervisors.simulators.xapi.datamodel import Class
from nova_hypervisors.simulators.xapi.errors import XapiFailure

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN_RE = re.compile(
    r'\s*(?:(?P<str>"[^"]*")|(?P<word>field|and|or|not|true|false)'
    r'|(?P<punct>[=()]))'
)


class _ParseError(Exception):
    pass


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == '':
            break
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise _ParseError('Failure("lexing: empty token")')
        pos = match.end()
        if match.group('str') is not None:
            tokens.append(('ident', match.group('str')[1:-1]))
        elif match.group('word') is not None:
            tokens.append((match.group('word'), match.group('word')))
        else:
            tokens.append((match.group('punct'), match.group('punct')))
    tokens.append(('eof', ''))
    return tokens


class _Parser:
    """Recursive descent for the grammar above; builds nested tuples."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][0]

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise _ParseError('Parsing.Parse_error')
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def parse(self) -> tuple:
        expr = self.expr()
        self.take('eof')
        return expr

    def expr(self) -> tuple:
        if self.peek() == 'not':
            self.take('not')
            return ('not', self.expr())
        left = self.atom()
        while self.peek() in ('and', 'or'):
            op = self.take(self.peek())
            if self.peek() == 'not':
                self.take('not')
                right = ('not', self.expr())
            else:
                right = self.atom()
            left = (op, left, right)
        return left

    def atom(self) -> tuple:
        kind = self.peek()
        if kind in ('true', 'false'):
            self.take(kind)
            return (kind,)
        if kind == '(':
            self.take('(')
            inner = self.expr()
            self.take(')')
            return inner
        left = self.value()
        self.take('=')
        return ('eq', left, self.value())

    def value(self) -> tuple:
        if self.peek() == 'field':
            self.take('field')
            return ('field', self.take('ident'))
        return ('literal', self.take('ident'))


def compile_filter(cls: Class, text: str) -> Predicate:
    """Compile ``text`` into a predicate over stored records of ``cls``."""
    try:
        tree = _Parser(_tokenize(text)).parse()
    except _ParseError as exc:
        raise XapiFailure('INVALID_VALUE', text, str(exc)) from None
    return _compile(cls, tree)


def _value_getter(cls: Class, node: tuple) -> Callable[[dict], str]:
    if node[0] == 'literal':
        literal = node[1]
        return lambda _record: literal
    column = node[1]
    field_name = cls.columns.get(column)
    if field_name is None:
        raise XapiFailure(
            'INTERNAL_ERROR',
            'DBCache_NotFound("missing field", "%s", "")' % column,
        )
    to_text = codec.db_string(cls.fields[field_name].type)
    return lambda record: to_text(record[field_name])


def _compile(cls: Class, node: tuple) -> Predicate:
    kind = node[0]
    if kind == 'true':
        return lambda _record: True
    if kind == 'false':
        return lambda _record: False
    if kind == 'not':
        inner = _compile(cls, node[1])
        return lambda record: not inner(record)
    if kind in ('and', 'or'):
        left = _compile(cls, node[1])
        right = _compile(cls, node[2])
        if kind == 'and':
            return lambda record: left(record) and right(record)
        return lambda record: left(record) or right(record)
    left_node, right_node = node[1], node[2]
    # The common shape, field = literal, compares without a closure call.
    if left_node[0] == 'field' and right_node[0] == 'literal':
        return _field_equals(cls, left_node, right_node[1])
    if right_node[0] == 'field' and left_node[0] == 'literal':
        return _field_equals(cls, right_node, left_node[1])
    left = _value_getter(cls, left_node)
    right = _value_getter(cls, right_node)
    return lambda record: left(record) == right(record)


def _field_equals(cls: Class, field_node: tuple, literal: str) -> Predicate:
    field_name = cls.columns.get(field_node[1])
    if field_name is None:
        getter = _value_getter(cls, field_node)
        return lambda record: getter(record) == literal
    xtype = cls.fields[field_name].type
    if xtype.kind in ('string', 'ref', 'enum', 'datetime'):
        return lambda record: record[field_name] == literal
    to_text = codec.db_string(xtype)
    return lambda record: to_text(record[field_name]) == literal
