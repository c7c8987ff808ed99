"""Every field the API's request bodies accept is read by some code: honoured, or refused by a validator.

A field that a body declares but no code reads is accepted and silently ignored, the failure this test
exists for (``return_images`` and ``enable_search_classifier`` once were). It walks the pydantic models
of the request schemas and looks each field's name up among the attribute names and string constants
of the package's code (its own declaration is neither). A name that other code also uses (``n``,
``type``) passes on that use; the test catches a field whose name nothing reads at all.
"""

from __future__ import annotations

import ast
import inspect
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

import groundglass
from groundglass.server import request_parts, responses_schemas, schemas

SRC = Path(groundglass.__file__).parent


@cache
def names_read() -> frozenset[str]:
    """Attribute names, string constants and keyword names anywhere in the package's code."""
    seen: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute):
                seen.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                seen.add(node.value)
            elif isinstance(node, ast.keyword) and node.arg:
                seen.add(node.arg)
    return frozenset(seen)


def request_models(module: ModuleType) -> list[type[BaseModel]]:
    return [
        m
        for m in vars(module).values()
        if inspect.isclass(m) and issubclass(m, BaseModel) and m.__module__ == module.__name__
    ]


def unread(model: type[BaseModel]) -> list[str]:
    read = names_read()
    return [
        name
        for name, field in model.model_fields.items()
        if name not in read and (field.alias or name) not in read
    ]


@pytest.mark.parametrize("module", [schemas, request_parts, responses_schemas], ids=lambda m: m.__name__)
def test_every_request_field_is_read(module: ModuleType) -> None:
    models = request_models(module)
    assert len(models) >= 5
    missing = {m.__name__: names for m in models if (names := unread(m))}
    assert not missing, f"fields accepted but read by no code (honour them or refuse them): {missing}"


def test_the_walk_finds_a_field_nothing_reads() -> None:
    class Probe(BaseModel):
        model: str = ""
        zz_accepted_and_ignored_field: bool = False

    assert unread(Probe) == ["zz_accepted_and_ignored_field"]


def test_every_field_of_perplexitys_sdk_is_declared() -> None:
    """Perplexity's own chat and search fields (its official SDK's parameter types) are each declared,
    so each is honoured or refused (UNSUPPORTED_*), never an ignored extra. Names with a leading
    underscore are its debugging switches, which pydantic cannot declare."""
    from perplexity.types import search_create_params
    from perplexity.types.chat import completion_create_params

    chat = [k for k in completion_create_params.CompletionCreateParamsBase.__annotations__ if k[0] != "_"]
    search = list(search_create_params.SearchCreateParams.__annotations__)
    assert len(chat) > 40 and len(search) > 10
    assert [k for k in chat if k not in schemas.ChatRequest.model_fields] == []
    assert [k for k in search if k not in schemas.SearchRequest.model_fields] == []


@pytest.mark.parametrize(
    ("model", "table"),
    [(schemas.ChatRequest, schemas.UNSUPPORTED_CHAT), (schemas.SearchRequest, schemas.UNSUPPORTED_SEARCH)],
    ids=["chat", "search"],
)
def test_unsupported_fields_pass_only_at_their_neutral_value(model: type[BaseModel], table: dict) -> None:
    from pydantic import ValidationError

    base = {"model": "sonar", "messages": [{"role": "user", "content": "hi"}], "query": "q"}
    for name, (neutral, fix) in table.items():
        for value in neutral:
            model.model_validate({**base, name: value})
        with pytest.raises(ValidationError) as info:
            model.model_validate({**base, name: "something"})
        error = info.value.errors()[0]
        assert error["type"] == "unsupported_parameter" and error["loc"] == (name,)
        assert name in error["msg"] and fix in error["msg"]
