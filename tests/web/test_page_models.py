"""The page's model choice lists the models that answer, not the studio's image models that
``GET /v1/models`` lists beside them (choosing ``toy-world`` ended every question in an error)."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import expect
from test_page import new_page
from web_helpers import Site


def test_the_model_choice_leaves_out_image_models(browser: Any, site: Site) -> None:
    listed = httpx.get(f"{site.url}/v1/models", headers={"Authorization": f"Bearer {site.key}"}, timeout=30)
    models = {m["id"]: m.get("kind") for m in listed.json()["data"]}
    assert models.get("toy-world") == "image"  # the API lists it: the page must leave it out
    page = new_page(browser, site, key=site.key)
    answering = sorted(name for name, kind in models.items() if kind != "image")
    options = page.locator("#model option")
    expect(options).to_have_count(len(answering))  # once the list is loaded
    shown = options.all_inner_texts()
    assert sorted(shown) == answering and "toy-world" not in shown
    expect(page.locator("#model")).to_have_value("sonar")
    page.context.close()
