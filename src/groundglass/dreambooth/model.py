"""The base model: load a Stable Diffusion 1.x/2.x pipeline's parts, and attach LoRA adapters.

A base model is a Hugging Face model id or a local diffusers folder with ``unet/``, ``vae/``,
``text_encoder/``, ``tokenizer/`` and ``scheduler/``. The parts are loaded one by one (not as a
pipeline) so that each can be frozen, trained or moved on its own. The noise scheduler used for
training is always a ``DDPMScheduler`` built from the folder's scheduler config, as in diffusers'
own DreamBooth script; its ``prediction_type`` (epsilon or v_prediction) decides the loss target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from groundglass.dreambooth.family import SD1, SDXL, Family, check_vae, family_of_folder
from groundglass.errors import GroundglassError, ModelError, NotFoundError

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

REQUIRED_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_WEIGHT_FILES = (
    "diffusion_pytorch_model.safetensors",
    "model.safetensors",
    "diffusion_pytorch_model.bin",
    "pytorch_model.bin",
    "diffusion_pytorch_model.safetensors.index.json",
    "model.safetensors.index.json",
)
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_ENCODER_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


@dataclass
class Components:
    """The parts of a Stable Diffusion model that training touches (SDXL adds a second text encoder)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: CLIPTokenizer
    noise_scheduler: DDPMScheduler
    family: Family = SD1
    text_encoder_2: Any = None  # SDXL: OpenCLIP ViT-bigG (CLIPTextModelWithProjection)
    tokenizer_2: Any = None

    def text_encoders(self) -> list[Any]:
        """The text encoders, first then second (one for SD 1.x/2.x)."""
        return [e for e in (self.text_encoder, self.text_encoder_2) if e is not None]


@dataclass
class LoraSettings:
    """LoRA adapters (peft) instead of full fine-tuning.

    Args:
        rank: rank of the low-rank update.
        alpha: scaling numerator (the update is scaled by alpha / rank); default: the rank.
        dropout: dropout on the adapter input.
        unet_target_modules: UNet linear layers that get adapters.
        text_encoder_target_modules: text-encoder layers that get adapters (when it trains).
    """

    rank: int = 4
    alpha: float | None = None
    dropout: float = 0.0
    unet_target_modules: list[str] = field(default_factory=lambda: list(UNET_LORA_TARGETS))
    text_encoder_target_modules: list[str] = field(default_factory=lambda: list(TEXT_ENCODER_LORA_TARGETS))


def resolve_base_model(base_model: str) -> str:
    """A local folder becomes its absolute path; a Hub id stays as it is."""
    path = Path(base_model).expanduser()
    if path.exists():
        return str(path.resolve())
    return base_model


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def required_parts(family: Family) -> tuple[str, ...]:
    """The subfolders a diffusers folder of ``family`` must have."""
    return (*REQUIRED_PARTS, "text_encoder_2", "tokenizer_2") if family is SDXL else REQUIRED_PARTS


def check_folder(folder: Path) -> Family:
    """The family of a diffusers folder; raise a GroundglassError naming every missing part."""
    if not folder.is_dir():
        raise GroundglassError(
            f"base model {folder} is not a folder",
            "give a diffusers folder (unet/, vae/, text_encoder/, tokenizer/, scheduler/) "
            "or a Hugging Face model id",
        )
    family = family_of_folder(folder)
    problems: list[str] = []
    for part in required_parts(family):
        sub = folder / part
        if not sub.is_dir():
            problems.append(f"{part}/ (missing)")
            continue
        if part.startswith("tokenizer"):
            if (
                not ((sub / "vocab.json").is_file() and (sub / "merges.txt").is_file())
                and not (sub / "tokenizer.json").is_file()
            ):
                problems.append(f"{part}/ (no vocab.json + merges.txt or tokenizer.json)")
            continue
        config = "scheduler_config.json" if part == "scheduler" else "config.json"
        if not (sub / config).is_file():
            problems.append(f"{part}/{config} (missing)")
        elif part != "scheduler" and not any((sub / w).is_file() for w in _WEIGHT_FILES):
            problems.append(f"{part}/ (no weights file)")
    if problems:
        raise ModelError(
            f"base model folder {folder} is incomplete: " + ", ".join(problems),
            "point model.base_model at a complete Stable Diffusion diffusers folder "
            "(unet/, vae/, text_encoder/, tokenizer/, scheduler/), e.g. one written by save_pretrained",
        )
    return family


def _locate(pretrained: str, *, revision: str | None, local_files_only: bool) -> tuple[str, Family]:
    """Where to load the base model from (a checked folder, or a Hub id) and its family."""
    from groundglass.dreambooth.family import detect_family

    folder = Path(pretrained).expanduser()
    if folder.is_file():
        family = detect_family(str(folder))
        raise GroundglassError(
            f"base model {folder} is a single {family.title} file; training reads diffusers folders",
            "convert it once (diffusers: Pipeline.from_single_file(FILE).save_pretrained(FOLDER)) "
            "and pass the folder",
        )
    if folder.exists():
        return str(folder), check_folder(folder)
    if _looks_like_path(pretrained):
        raise NotFoundError(
            f"base model folder {pretrained} does not exist",
            "fix model.base_model: a diffusers folder or a Hugging Face id such as "
            "stable-diffusion-v1-5/stable-diffusion-v1-5",
        )
    return pretrained, detect_family(pretrained, revision=revision, local_files_only=local_files_only)


def _load_parts(source: str, family: Family, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The model's parts by ``Components`` field name, read from ``source`` in float32.

    Always float32, whatever the files hold (weights stored as float16, like the toy world's, are
    upcast): training keeps float32 master weights, and mixed precision casts per operation.
    """
    import torch
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    parts: dict[str, Any] = {
        "unet": UNet2DConditionModel.from_pretrained(
            source, subfolder="unet", torch_dtype=torch.float32, **kwargs
        ),
        "vae": AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=torch.float32, **kwargs),
        "text_encoder": CLIPTextModel.from_pretrained(
            source, subfolder="text_encoder", dtype=torch.float32, attn_implementation="sdpa", **kwargs
        ),
        "tokenizer": CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **kwargs),
    }
    if family is SDXL:
        parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(
            source, subfolder="text_encoder_2", dtype=torch.float32, attn_implementation="sdpa", **kwargs
        )
        parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2", **kwargs)
    parts["noise_scheduler"] = DDPMScheduler.from_pretrained(source, subfolder="scheduler", **kwargs)
    return parts


def _load_error(pretrained: str, folder: Path, exc: Exception) -> ModelError:
    """The error for a base model whose parts failed to load, with the fix for a folder or a Hub id."""
    where = "folder" if folder.exists() else "Hugging Face model"
    fix = (
        "check the files of the folder"
        if folder.exists()
        else "check the id and your network; gated models need `huggingface-cli login`; with "
        "local_files_only the model must already be in the Hugging Face cache; or pass a local folder"
    )
    return ModelError(f"cannot load base {where} {pretrained!r}: {str(exc).splitlines()[0]}", fix)


def load_components(
    pretrained: str, *, local_files_only: bool = False, revision: str | None = None, vae: str | None = None
) -> Components:
    """Load UNet, VAE, text encoder(s), tokenizer(s) and a DDPM noise scheduler from a folder or a Hub id.

    The model family (:mod:`~groundglass.dreambooth.family`) decides the parts: SDXL adds
    ``text_encoder_2`` (with its projection, for the pooled embedding) and ``tokenizer_2``. ``vae``
    replaces the model's own VAE (a folder or Hub id of an ``AutoencoderKL``, or of a pipeline with a
    ``vae/`` subfolder); a VAE of another family is refused.
    """
    folder = Path(pretrained).expanduser()
    source, family = _locate(pretrained, revision=revision, local_files_only=local_files_only)
    kwargs: dict[str, Any] = {"local_files_only": local_files_only, "revision": revision}
    try:
        parts = _load_parts(source, family, kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error(pretrained, folder, exc) from exc
    if vae is not None:
        parts["vae"] = load_vae(vae, local_files_only=local_files_only)
    check_vae(
        family,
        parts["vae"].config,
        parts["unet"].config,
        f"base model {pretrained}" + (f" with VAE {vae}" if vae else ""),
    )
    return Components(**parts, family=family)


def load_vae(vae: str, *, local_files_only: bool = False) -> Any:
    """An ``AutoencoderKL`` from a VAE folder or id, or from a pipeline folder's ``vae/`` subfolder."""
    import torch
    from diffusers import AutoencoderKL

    path = Path(vae).expanduser()
    subfolder = "vae" if (path / "vae").is_dir() else None
    try:
        return AutoencoderKL.from_pretrained(
            str(path) if path.exists() else vae,
            subfolder=subfolder,
            torch_dtype=torch.float32,
            local_files_only=local_files_only,
        )
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load VAE {vae!r}: {str(exc).splitlines()[0]}",
            "model.vae is a folder (or Hub id) of an AutoencoderKL, or of a pipeline with a vae/ subfolder",
        ) from exc


def use_sdpa_attention(unet: Any) -> bool:
    """Run the UNet's attention through PyTorch's scaled_dot_product_attention (``AttnProcessor2_0``).

    diffusers picks it by default on PyTorch 2; this makes sure a model whose config or earlier code
    set the plain (matmul + softmax) processor gets it too. Custom processors (IP-adapter, added-KV
    attention) are left alone. Returns True when every processor is the SDPA one afterwards.
    """
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    processors = unet.attn_processors
    if all(type(p) in (AttnProcessor, AttnProcessor2_0) for p in processors.values()):
        if not all(type(p) is AttnProcessor2_0 for p in processors.values()):
            unet.set_attn_processor(AttnProcessor2_0())
        return True
    return False


def enable_gradient_checkpointing(unet: Any, text_encoders: list[Any]) -> None:
    """Recompute activations in the backward pass instead of keeping them: the UNet, and the text
    encoders given (those whose weights train)."""
    unet.enable_gradient_checkpointing()
    kwargs = {"use_reentrant": False}
    for encoder in text_encoders:
        if hasattr(encoder, "activation_checkpointing_enable"):  # transformers >= 5 name
            encoder.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def freeze(module: Any) -> None:
    """No gradients, eval mode (no dropout, frozen norm statistics)."""
    module.requires_grad_(False)
    module.eval()


def attach_lora(components: Components, lora: LoraSettings, *, text_encoder: bool, seed: int = 0) -> None:
    """Freeze the base weights and add trainable LoRA adapters (adapter name ``default``).

    The adapters' random initialisation is seeded, so two runs with the same seed start equal.
    ``text_encoder`` adds adapters to the text encoder(s) as well (both of SDXL's).
    """
    import torch
    from peft import LoraConfig, inject_adapter_in_model

    alpha = lora.alpha if lora.alpha is not None else lora.rank
    components.unet.requires_grad_(False)
    encoders = components.text_encoders()
    for encoder in encoders:
        encoder.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        components.unet.add_adapter(
            LoraConfig(
                r=lora.rank,
                lora_alpha=alpha,
                lora_dropout=lora.dropout,
                init_lora_weights="gaussian",
                target_modules=list(lora.unet_target_modules),
            )
        )
        if text_encoder:
            # transformers' own add_adapter wants a newer peft than the pinned one; inject directly and
            # record the config the way add_adapter does, so peft's state-dict helpers work.
            for encoder in encoders:
                config = LoraConfig(
                    r=lora.rank,
                    lora_alpha=alpha,
                    lora_dropout=lora.dropout,
                    init_lora_weights="gaussian",
                    target_modules=list(lora.text_encoder_target_modules),
                )
                inject_adapter_in_model(config, encoder, adapter_name="default")
                encoder.peft_config = {"default": config}
                encoder._hf_peft_config_loaded = True
