"""One name, one meaning on the DreamBooth side: the fit config's keys, the fine-tuning API's
hyperparameters and the ``dreambooth`` commands' options, read from the real classes and CLI.

tests/test_names.py covers groundglass's own settings, the whole CLI and the server's OpenAPI
document. A DreamBooth run is configured elsewhere: a YAML fit config whose sections are the
LightningModule's, the data module's and the callbacks' arguments, and a fine-tuning job's
``hyperparameters``, a free-form object in OpenAPI. Those names are read here from the classes (a
hyperparameter's documentation is its field's description).

Each name used in more than one of these places is declared in ``MEANINGS`` (one meaning everywhere)
or ``TWO_MEANINGS`` (a known clash, with why it stays for now). Where a place documents its names
(the Args of a config class, the help of an option), the declared meaning of ``steps``,
``train_steps`` and ``use_ema`` is checked against that text: a ``steps`` documented as optimizer
steps fails even if someone declares it.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from groundglass.cli import app
from groundglass.dreambooth.callbacks import SampleImages
from groundglass.dreambooth.checkpoints import DreamBoothCheckpoint
from groundglass.dreambooth.data import ClassImageGeneration, DreamBoothDataModule
from groundglass.dreambooth.fidelity import FidelityTracker
from groundglass.dreambooth.job import Hyperparameters
from groundglass.dreambooth.model import LoraSettings
from groundglass.dreambooth.module import DreamBoothModule
from groundglass.dreambooth.optim import EmaSettings

# Where each fit-config section's keys come from (the section's class); trainer.* is Lightning's own.
FIT_SECTIONS: dict[str, Any] = {
    "model": DreamBoothModule,
    "model.ema": EmaSettings,
    "model.lora": LoraSettings,
    "data": DreamBoothDataModule,
    "data.class_image_generation": ClassImageGeneration,
    "checkpoint": DreamBoothCheckpoint,
    "sampling": SampleImages,
    "trainer.callbacks[FidelityTracker]": FidelityTracker,
}

MEANINGS = {
    "steps": "denoising steps per image (optimizer steps are trainer.max_steps / train_steps)",
    "use_ema": "draw or export with the run's EMA weights when it kept them (model.ema: the EMA's settings)",
    "batch_size": "images per batch (sampling batch, or instance images per micro-batch)",
    "guidance_scale": "classifier-free guidance scale",
    "scheduler": "the diffusion sampler (ddim, dpm++, euler)",
    "negative_prompt": "what the sampled images should not show",
    "seed": "the random seed everything of a run or a drawing follows from",
    "seeds": "one image per seed",
    "prompts": "the prompts images are drawn from",
    "prompt": "the text an image is drawn from",
    "every_n_steps": "every this many optimizer steps",
    "local_files_only": "never download a model",
    "base_model": "the model fine-tuned (a diffusers folder or a Hub id)",
    "revision": "the Hub revision of the base model",
    "vae": "another VAE for the base model",
    "resolution": "image size in pixels (square)",
    "device": "the torch device that runs the model",
    "instance_prompt": "the prompt of the subject's photos, with the identifier",
    "identifier": "the rare token that names the subject",
    "class_prompt": "the prompt of the class (prior preservation)",
    "num_class_images": "how many class images prior preservation uses",
    "learning_rate": "the UNet's peak learning rate",
    "text_encoder_learning_rate": "the text encoder's learning rate",
    "lr_scheduler": "the learning-rate schedule (diffusers' get_scheduler)",
    "lr_warmup_steps": "linear warm-up, in optimizer steps",
    "prior_loss_weight": "lambda, the weight of the class loss",
    "train_text_encoder": "train the text encoder too",
    "random_flip": "random horizontal flip",
    "center_crop": "centre crop instead of random crop",
    "out": "the folder a command writes into",
    "config": "the YAML fit config of a run",
    "quiet": "no progress output",
    "model": "the model a command reads (a diffusers folder, a model id or a fit checkpoint)",
    "num_images": "how many images to draw or to have",
    "height": "image height in pixels",
    "width": "image width in pixels",
    "json": "print JSON instead of text",
    "threads": "CPU threads that part uses",
    "rank": "LoRA rank",
    "alpha": "LoRA alpha",
    "at_end": "once more when training ends",
    "tolerance": "how far the guard metric may fall below the base model's",
    "ckpt": "a fit checkpoint (.ckpt)",
    "format": "the export format",
    "train_steps": "DreamBooth optimizer steps (--train-steps; a fine-tuning job's train_steps)",
    "prediction_type": "what the UNet predicts: epsilon or v_prediction",
    "class_data_dir": "the folder of class images (prior preservation)",
}
# bench's untimed optimizer steps are --warmup-steps: model.ema.warmup (a yes/no) keeps the plain word.

# Names with two meanings here: the place that means the other thing, and why it is not renamed yet.
# Empty: a fine-tuning job's hyperparameters.steps (optimizer steps) became train_steps, its old name
# read for one release (server/finetune/service.py); a clash found later goes here until renamed.
TWO_MEANINGS: dict[str, tuple[str, str]] = {}

# The places whose documentation states what a name means, and the words it must use.
DOCUMENTED = {
    "steps": re.compile(r"denois", re.IGNORECASE),
    "train_steps": re.compile(r"optimizer steps", re.IGNORECASE),
    "use_ema": re.compile(r"\bEMA\b"),
}


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    sub = getattr(cmd, "commands", None)
    if sub:
        for name, child in sub.items():
            yield from _commands(child, (*path, name))
    else:
        yield " ".join(path), cmd


def cli_options() -> Iterator[tuple[str, str, str]]:
    """(command, name, help) of every visible option of the dreambooth commands."""
    for path, cmd in _commands(typer.main.get_command(app)):
        if not path.startswith("dreambooth "):
            continue
        for p in cmd.params:
            if p.param_type_name != "option" or p.hidden or "--help" in p.opts:
                continue
            for o in p.opts:
                if o.startswith("--"):
                    yield path, o.lstrip("-").replace("-", "_"), p.help or ""


def _args_doc(cls: Any) -> dict[str, str]:
    """``name: text`` of a class docstring's Args section (continuation lines joined)."""
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    current = None
    for line in doc.split("Args:", 1)[-1].splitlines() if "Args:" in doc else []:
        match = re.match(r"\s{4}(\w+): (.*)", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2)
        elif current and line.startswith(" " * 8):
            out[current] += " " + line.strip()
    return out


def config_keys(cls: Any) -> list[str]:
    if is_dataclass(cls):
        return [f.name for f in fields(cls)]
    return [
        name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "args", "kwargs")
    ]


def places() -> dict[str, dict[str, str]]:
    """name -> {place: documented meaning ("" where the place documents nothing)}."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for section, cls in FIT_SECTIONS.items():
        docs = _args_doc(cls)
        for key in config_keys(cls):
            found[key][f"fit: {section}"] = docs.get(key, "")
    for key, field in Hyperparameters.model_fields.items():
        found[key]["api: fine-tuning hyperparameters"] = field.description or ""
    for path, name, help_text in cli_options():
        found[name][f"cli: {path}"] = help_text
    return found


@pytest.fixture(scope="module")
def shared() -> dict[str, dict[str, str]]:
    return {name: where for name, where in places().items() if len(where) > 1}


def test_the_places_are_read() -> None:
    """The readers see what they should (a reader that found nothing would pass every check)."""
    found = places()
    assert "fit: sampling" in found["steps"] and "cli: dreambooth sample" in found["steps"]
    assert "cli: dreambooth bench" in found["train_steps"] and "fit: model" in found["ema"]
    assert "denoising" in found["steps"]["fit: sampling"]
    assert "max_steps" not in found  # Lightning's trainer section is not ours to name
    assert "api: fine-tuning hyperparameters" in found["train_steps"]
    assert "api: fine-tuning hyperparameters" not in found["steps"]  # read for one release, no field


def test_every_shared_dreambooth_name_has_one_declared_meaning(shared: dict[str, dict[str, str]]) -> None:
    declared = set(MEANINGS) | set(TWO_MEANINGS)
    undeclared = {name: sorted(where) for name, where in shared.items() if name not in declared}
    assert not undeclared, (
        "these names are used in several DreamBooth places: if each means one thing, add it to MEANINGS "
        f"with that meaning; if not, rename one use and keep the old spelling a release: {undeclared}"
    )


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_a_documented_name_says_the_one_meaning(name: str) -> None:
    """``steps`` is documented as denoising steps wherever it is documented, ``train_steps`` as optimizer
    steps, ``use_ema`` as the EMA weights; a place that documents nothing is a listed clash or the same
    concept by construction (dataclass fields are documented on their class)."""
    words = DOCUMENTED[name]
    where = places()[name]
    clash_place = TWO_MEANINGS.get(name, ("",))[0]
    for place, text in where.items():
        if place == clash_place:
            continue
        assert words.search(text), f"{name} at {place} is documented as {text!r}: one name, one meaning"


def test_optimizer_steps_are_never_called_steps() -> None:
    """Every option or key that counts optimizer steps says so in its name (train_steps, max_steps,
    every_n_train_steps, lr_warmup_steps), unless a clash is listed."""
    clash_place = TWO_MEANINGS.get("steps", ("",))[0]
    for name, where in places().items():
        for place, text in where.items():
            if name == "steps" and place != clash_place:
                assert "optimizer" not in text.lower(), f"{place}: steps documented as optimizer steps"


def test_ema_is_settings_and_use_ema_is_a_switch() -> None:
    """model.ema holds the EMA's settings (a dataclass); use_ema is a yes/no everywhere it appears."""
    hints = typing.get_type_hints(DreamBoothModule.__init__)
    assert EmaSettings in typing.get_args(hints["ema"])
    ema_places = places()["ema"]
    assert set(ema_places) == {"fit: model"}, f"ema means the EMA's settings, at model.ema only: {ema_places}"
    for cls in (SampleImages, FidelityTracker):
        assert typing.get_type_hints(cls.__init__)["use_ema"] is bool


def test_known_clashes_are_still_there() -> None:
    """TWO_MEANINGS only shrinks: once a clash is renamed, its entry goes."""
    found = places()
    for name, (place, _why) in TWO_MEANINGS.items():
        assert place in found.get(name, {}), f"{name} is no longer at {place}: remove it from TWO_MEANINGS"


def test_the_openapi_document_shows_train_steps(tmp_path: Path) -> None:
    """A job's ``method`` is a free-form object in OpenAPI (the service checks it and names the bad
    field); its description and example show train_steps as optimizer steps."""
    import warnings

    from groundglass.config import load_settings
    from groundglass.server.app import create_app

    with warnings.catch_warnings():  # FastAPI warns about duplicate operation ids on aliased routes
        warnings.simplefilter("ignore")
        spec = create_app(load_settings(None, home=str(tmp_path)), run_jobs=False).openapi()
    method = spec["components"]["schemas"]["JobCreate"]["properties"]["method"]
    (example,) = method["examples"]
    assert example["dreambooth"]["hyperparameters"]["train_steps"] == 400
    assert "steps" not in example["dreambooth"]["hyperparameters"]
    assert "train_steps (optimizer steps" in method["description"]


@pytest.mark.parametrize(
    "argv",
    [
        ["dreambooth", "sample", "--model", "{missing}", "--prompt", "a photo", "--no-ema", "--steps", "0"],
        ["dreambooth", "sample", "--model", "{missing}", "--prompt", "a photo", "--ema", "--steps", "0"],
    ],
)
def test_sample_still_takes_the_old_ema_spelling(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sample --ema/--no-ema`` (tests/test_names.py covers export's) warns and then runs on: here to the
    steps check, which comes before any model is opened."""
    from groundglass.cli import main

    argv = [a.replace("{missing}", str(tmp_path / "missing")) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code != 0
    assert "warning: --ema/--no-ema is deprecated and goes away in the next release; use --use-ema" in err
    assert "No such option" not in err and "steps" in err
