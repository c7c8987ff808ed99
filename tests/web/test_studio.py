"""The studio page in Debian's chromium against a real server that fine-tunes the embedded toy-world
model on its bundled star: photos as thumbnails, a job started with a preset, its loss curve, phase
and samples as they come, then images drawn with the new model, a PNG and the export downloaded."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import Server, create_key, free_port, write_config
from test_page import AXE, axe_violations

from groundglass.dreambooth.world.subject import instance_paths

pytestmark = pytest.mark.slow
expect = pytest.importorskip("playwright.sync_api").expect
JOB_TIMEOUT_MS = 240_000  # a busy two-core machine


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    home = tmp_path_factory.mktemp("studio-home")
    write_config(home, warm_up=False, finetune_accelerator="cpu")
    key = create_key(home, "studio")
    server = Server(home, free_port(), env={"OMP_NUM_THREADS": "1"}).start()
    try:
        yield server, key
    finally:
        server.stop()


def test_studio_fine_tunes_the_toy_world_and_draws_with_it(
    browser: Any, studio_server: tuple[Server, str], screens: Path, tmp_path: Path
) -> None:
    server, key = studio_server
    context = browser.new_context(accept_downloads=True)
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"script error: {e}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(server.base_url + "/studio")

    # no key yet: the page asks for one, then lists the base models
    expect(page.locator("#key-form")).to_be_visible()
    page.locator("#key-input").fill(key)
    page.locator("#key-form button[type=submit]").click()
    expect(page.locator("#base-model option")).to_have_text(["toy-world"])
    problems.clear()  # the 401 that made the page ask for a key is logged by the browser

    page.locator("#photos").set_input_files([str(p) for p in instance_paths()])
    expect(page.locator("#thumbs img")).to_have_count(4)
    expect(page.locator("#photo-count")).to_have_text("4 file(s) chosen.")
    assert page.locator("#thumbs img").first.evaluate("img => img.complete && img.naturalWidth") == 32

    page.locator("#preset").select_option("unet")
    page.locator("#steps").fill("6")
    page.locator("#learning-rate").fill("5e-4")
    page.locator("#sample-every").fill("3")
    page.locator("#class-images").fill("2")
    page.locator("#start").click()
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#loss-curve")).to_have_attribute("data-points", "6")
    assert len(page.locator("#loss-line").get_attribute("points").split()) == 6
    expect(page.locator("#samples img")).to_have_count(2)
    expect(page.locator("#samples li span")).to_have_text(["step 3", "step 6"])
    expect(page.locator("#progress")).to_have_attribute("max", "6")
    assert page.locator("#progress").evaluate("p => p.value") == 6
    expect(page.locator("#phase")).to_have_text("phase: export")
    model_id = page.locator("#draw-model").input_value()
    assert model_id.startswith("ft:toy-world:studio::")
    expect(page.locator("#model-id")).to_have_text(f"Model: {model_id}")
    page.screenshot(path=str(screens / "studio-trained.png"), full_page=True)

    page.locator("#n").fill("2")
    page.locator("#seed").fill("7")
    page.locator("#draw-steps").fill("4")
    page.locator("#generate").click()
    expect(page.locator("#drawn img")).to_have_count(2, timeout=60_000)
    with page.expect_download() as downloaded:
        page.locator("#drawn a").first.click()
    png = tmp_path / "drawn.png"
    downloaded.value.save_as(png)
    assert downloaded.value.suggested_filename == "groundglass-seed7.png"
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (32, 32)
        assert image.text["model"] == model_id and image.text["seed"] == "7" and image.text["steps"] == "4"

    with page.expect_download(timeout=120_000) as exported:
        page.locator("#exports button[data-format=diffusers]").click()
    archive = tmp_path / "model.zip"
    exported.value.save_as(archive)
    assert exported.value.suggested_filename.endswith("-diffusers.zip")
    assert "model_index.json" in zipfile.ZipFile(io.BytesIO(archive.read_bytes())).namelist()
    page.locator("#exports button[data-format=lora]").click()  # a full-UNet run has no LoRA: said so
    expect(page.locator("#banner")).to_contain_text("no LoRA adapters")
    page.locator("#banner").evaluate("el => { el.textContent = ''; }")
    page.locator("#exports button[data-format=lora-kohya]").click()  # nor in the A1111/ComfyUI layout
    expect(page.locator("#banner")).to_contain_text("no LoRA adapters")
    page.screenshot(path=str(screens / "studio-generated.png"), full_page=True)
    assert axe_violations(page) == []
    console_errors = [p for p in problems if "400" not in p]  # the LoRA refusal above
    context.close()
    assert console_errors == []
