"""JSON and YAML text to plain data, within the limits of :mod:`opplan.limits`.

Parsers are where a small hostile file turns into a large process: YAML aliases repeat data
without bound ("billion laughs"), nesting exhausts the stack, a huge integer costs quadratic time
to convert. Everything user-supplied is parsed here, so those defences exist once.
"""
from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from opplan.errors import OpplanError
from opplan.limits import MAX_DEPTH, MAX_YAML_EXPANSION, check_depth

MAX_INT_DIGITS = 30     # 1e30 is far above any quantity we accept; longer integers are refused unparsed


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise OpplanError(f"an integer of {len(digits.lstrip('-'))} digits is too large (the limit is "
                          f"{MAX_INT_DIGITS} digits)")
    return int(digits)


def _json_constant(name: str) -> float:
    raise OpplanError(f"{name} is not a number JSON allows (numbers must be finite)")


def parse_json(text: str, source: str) -> Any:
    """Strict JSON: no NaN or Infinity, bounded integers, nesting at most :data:`MAX_DEPTH`."""
    try:
        data = json.loads(text, parse_int=_json_int, parse_constant=_json_constant)
    except RecursionError:
        raise OpplanError(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
    except OpplanError as error:
        raise OpplanError(f"{source}: {error}") from None
    check_depth(data, source)
    return data


def _yaml_loader_class() -> type:
    """A safe loader reading the YAML 1.2 core schema: ``1:30`` stays text (YAML 1.1 reads 90),
    ``yes``/``no`` stay text, no timestamps and no merge keys; ``1e8`` is a float."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        yaml_implicit_resolvers: ClassVar[dict] = {}

    resolvers = (
        ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", list("~nN") + [""]),
        ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
        ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
        ("tag:yaml.org,2002:float",
         r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
         list("-+0123456789.")),
    )
    for tag, pattern, first in resolvers:
        Loader.add_implicit_resolver(tag, re.compile(pattern), first)

    def construct_int(loader: Any, node: Any) -> int:
        text = loader.construct_scalar(node)
        digits = text.lstrip("+-")
        if len(digits) > MAX_INT_DIGITS:
            raise OpplanError(f"an integer of {len(digits)} digits is too large (the limit is {MAX_INT_DIGITS} digits)")
        value = int(digits, 8) if digits.startswith("0o") else int(digits, 16) if digits.startswith("0x") \
            else int(digits)
        return -value if text.startswith("-") else value

    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    return Loader


_LOADER: type | None = None


def _expansion(root: Any) -> int:
    """Nodes the document holds once aliases are expanded, minus the nodes it spells out:
    what aliases add. Computed on the composed graph (shared nodes), never by expanding."""
    import yaml

    size: dict[int, int] = {}
    order: list[Any] = []
    stack = [root]
    while stack:                                  # post-order without recursion
        node = stack.pop()
        if id(node) in size:
            continue
        size[id(node)] = -1
        order.append(node)
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(child for pair in node.value for child in pair)
    for node in reversed(order):
        children = node.value if isinstance(node, yaml.SequenceNode) else \
            [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else []
        size[id(node)] = 1 + sum(max(size[id(c)], 1) for c in children)
    return size[id(root)] - len(order)


def _node_depth(root: Any) -> int:
    import yaml

    deepest, stack, seen = 0, [(root, 1)], set()
    while stack:
        node, depth = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        deepest = max(deepest, depth)
        if isinstance(node, yaml.SequenceNode):
            stack.extend((c, depth + 1) for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend((c, depth + 1) for pair in node.value for c in pair)
    return deepest


def parse_yaml(text: str, source: str) -> Any:
    """YAML (1.2 core schema) with aliases allowed to add at most :data:`MAX_YAML_EXPANSION` nodes."""
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _yaml_loader_class()
    loader = _LOADER(text)
    try:
        try:
            root = loader.get_single_node()
        except RecursionError:
            raise OpplanError(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
        if root is None:
            return None
        if _node_depth(root) > MAX_DEPTH:
            raise OpplanError(f"{source}: nested more than {MAX_DEPTH} levels deep")
        added = _expansion(root)
        if added > MAX_YAML_EXPANSION:
            raise OpplanError(f"{source}: YAML aliases would expand the document by {added:,} nodes "
                              f"(the limit is {MAX_YAML_EXPANSION:,})")
        try:
            return loader.construct_document(root)
        except OpplanError as error:
            raise OpplanError(f"{source}: {error}") from None
    except yaml.YAMLError as error:
        raise OpplanError(f"{source}: not valid YAML ({_first_line(error)})") from None
    finally:
        loader.dispose()


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line[:120]


def parse_json_or_yaml(text: str, source: str) -> Any:
    """JSON when it is JSON, else YAML (a superset for our purposes); a one-line error naming both
    failures otherwise."""
    try:
        return parse_json(text, source)
    except OpplanError:
        if text.lstrip().startswith(("{", "[")):
            raise
        json_failed = None
    except json.JSONDecodeError as error:
        json_failed = error
    except ValueError as error:     # e.g. an integer past Python's conversion limit
        raise OpplanError(f"{source}: {_first_line(error)}") from None
    try:
        data = parse_yaml(text, source)
    except OpplanError as yaml_error:
        if json_failed is None or "not valid YAML" not in str(yaml_error):
            raise
        reason = str(yaml_error).split("not valid YAML (", 1)[-1].rstrip(")")
        raise OpplanError(f"{source}: not valid JSON ({json_failed.msg} at line {json_failed.lineno}) "
                          f"nor YAML ({reason})") from None
    if data is None or isinstance(data, str):
        where = f"({json_failed.msg} at line {json_failed.lineno}) " if json_failed else ""
        raise OpplanError(f"{source}: not valid JSON {where}and not a YAML mapping")
    return data
