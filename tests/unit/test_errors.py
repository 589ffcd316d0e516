"""The one error hierarchy: rooted, documented, pickling with its context."""

from __future__ import annotations

import copy
import pickle
import re

import pytest

import vecstore
from vecstore import errors
from vecstore.errors import (
    AlreadyExistsError,
    CommitConflictError,
    FilterError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYet,
    RecordError,
    VecstoreError,
    WaitTimeoutError,
)

CLASSES: list[type[VecstoreError]] = [getattr(errors, name) for name in errors.__all__]


def test_all_is_sorted_and_complete() -> None:
    assert errors.__all__ == sorted(errors.__all__)
    defined = {
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)


def test_package_re_exports_every_error() -> None:
    for name in errors.__all__:
        assert getattr(vecstore, name) is getattr(errors, name)
        assert name in vecstore.__all__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_derives_from_the_root(cls: type[VecstoreError]) -> None:
    assert issubclass(cls, VecstoreError)
    assert issubclass(cls, Exception)


def test_no_builtin_shadowing() -> None:
    import builtins

    for name in errors.__all__:
        assert not hasattr(builtins, name), f"{name} shadows a builtin"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickles_with_message_and_context(cls: type[VecstoreError], protocol: int) -> None:
    err = cls('bad record "x"', file="a.parquet", row=3, column=None, extra={"k": [1, 2]})
    back = pickle.loads(pickle.dumps(err, protocol=protocol))
    assert type(back) is cls
    assert back.message == 'bad record "x"'
    assert str(back) == 'bad record "x"'
    assert back.args == err.args
    assert back.context == {"file": "a.parquet", "row": 3, "column": None, "extra": {"k": [1, 2]}}
    assert back.file == "a.parquet"
    assert back.row == 3
    assert back.column is None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_copies(cls: type[VecstoreError]) -> None:
    err = cls("m", index="docs")
    for dup in (copy.copy(err), copy.deepcopy(err)):
        assert type(dup) is cls
        assert (dup.message, dup.context) == ("m", {"index": "docs"})


def test_pickles_without_context() -> None:
    back = pickle.loads(pickle.dumps(VecstoreError("plain")))
    assert (back.message, back.context, str(back)) == ("plain", {}, "plain")


def test_context_reads_as_attributes() -> None:
    err = RecordError(
        'error reading record (file "a.parquet", row 3): bad', file="a.parquet", row=3, code="x"
    )
    assert (err.file, err.row, err.code) == ("a.parquet", 3, "x")
    assert err.context["row"] == 3
    assert not hasattr(err, "column")
    with pytest.raises(AttributeError, match="column"):
        _ = err.column


def test_context_never_overrides_real_attributes() -> None:
    err = VecstoreError("real message", args="ctx")
    assert err.args == ("real message",)
    assert err.context == {"args": "ctx"}


def test_raised_errors_survive_a_process_boundary_as_exceptions() -> None:
    try:
        raise RecordError("boom", file="f", row=1) from ValueError("cause")
    except RecordError as exc:
        back = pickle.loads(pickle.dumps(exc))
    with pytest.raises(RecordError, match="^boom$"):
        raise back


def _tree(doc: str) -> dict[str, str | None]:
    """class name -> parent name, parsed from the box-drawing tree."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(?P<pre>[ │├└─]*?)(?P<name>[A-Z][A-Za-z]+)\b", line.strip("\n"))
        if not m or not re.search(r"(├──|└──|^\s*VecstoreError\s*$)", line):
            continue
        depth = len(m.group("pre"))
        name = m.group("name")
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_docstring_tree_names_every_class_with_its_parent() -> None:
    assert errors.__doc__
    tree = _tree(errors.__doc__)
    assert set(tree) == set(errors.__all__)
    assert tree["VecstoreError"] is None
    for name, parent in tree.items():
        if parent is None:
            continue
        cls = getattr(errors, name)
        vecstore_bases = [b for b in cls.__bases__ if issubclass(b, VecstoreError)]
        assert [b.__name__ for b in vecstore_bases] == [parent], name


def test_not_found_str_is_the_message() -> None:
    err = NotFoundError('Index "docs" not found', index="docs")
    assert isinstance(err, KeyError)
    assert str(err) == 'Index "docs" not found'
    assert str(pickle.loads(pickle.dumps(err))) == 'Index "docs" not found'
    with pytest.raises(KeyError):
        raise err


def test_builtin_families() -> None:
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(FilterError, ValueError)
    assert issubclass(FilterError, InvalidArgumentError)
    assert issubclass(WaitTimeoutError, TimeoutError)
    assert issubclass(NotImplementedYet, NotImplementedError)
    assert issubclass(CommitConflictError, AlreadyExistsError)
    with pytest.raises(ValueError, match="dimension"):
        raise InvalidArgumentError("bad dimension")
    with pytest.raises(TimeoutError):
        raise WaitTimeoutError("late", id="x")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_str_is_the_message_for_every_class(cls: type[VecstoreError]) -> None:
    assert str(cls("exactly this", file="f")) == "exactly this"
