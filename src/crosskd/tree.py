"""Nested containers of tensors or arrays: one way to walk them.

Batches, checkpoint states and feature stores are trees of dicts, lists, tuples and
dataclasses with tensors (or memory-mapped arrays) at the leaves. Every walk visits the
leaves in the same order (dataclass fields, then dict insertion order), which is what lets
a CUDA graph's input list line up with a batch's tensors.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Hashable, Iterator

import torch


def _is_dataclass_instance(node: Any) -> bool:
    return dataclasses.is_dataclass(node) and not isinstance(node, type)


def map_leaves(function: Callable[[Any], Any], tree: Any, leaf: type = torch.Tensor) -> Any:
    """A copy of `tree` with `function` applied to every `leaf`-typed value; other values
    (strings, numbers, None) are kept as they are."""
    if isinstance(tree, leaf):
        return function(tree)
    if isinstance(tree, dict):
        return {key: map_leaves(function, value, leaf) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_leaves(function, value, leaf) for value in tree)
    if _is_dataclass_instance(tree):
        return dataclasses.replace(tree, **{
            field.name: map_leaves(function, getattr(tree, field.name), leaf)
            for field in dataclasses.fields(tree) if field.init})
    return tree


def leaves(tree: Any, leaf: type = torch.Tensor) -> Iterator[Any]:
    """Every `leaf`-typed value of `tree`, in the order `map_leaves` visits them."""
    if isinstance(tree, leaf):
        yield tree
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from leaves(value, leaf)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            if not isinstance(value, str):
                yield from leaves(value, leaf)
    elif _is_dataclass_instance(tree):
        for field in dataclasses.fields(tree):
            yield from leaves(getattr(tree, field.name), leaf)


def structure(tree: Any) -> Hashable:
    """What a tree is made of, without its values: dict keys and nesting, and the shape and
    dtype of every tensor (two trees with equal structures can share one CUDA graph)."""
    if isinstance(tree, torch.Tensor):
        return tuple(tree.shape), tree.dtype
    if isinstance(tree, dict):
        return tuple((key, structure(value)) for key, value in tree.items())
    if isinstance(tree, (list, tuple)):
        return type(tree).__name__, tuple(structure(value) for value in tree)
    if _is_dataclass_instance(tree):
        return type(tree).__name__, tuple((field.name, structure(getattr(tree, field.name)))
                                          for field in dataclasses.fields(tree))
    return None if tree is None else type(tree).__name__
