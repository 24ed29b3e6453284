"""Where a model comes from: the built-in sources, a local folder, or a Hugging Face id (with one quick hub probe
instead of the hub client's retries), and its config, read without any weight."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from inference.errors import ModelLoadError, WeightsMissingError
from inference.weights.tiny import TINY_LABEL, TINY_SOURCE, TRAINED_LABEL, TRAINED_SOURCE, trained_folder


def is_tiny(source: str) -> bool:
    return source == TINY_SOURCE


def is_builtin(source: str) -> bool:
    """The built-in sources: ``tiny`` (random weights, built in memory) and ``tiny-trained`` (shipped weights)."""
    return source in (TINY_SOURCE, TRAINED_SOURCE)


def source_label(source: str) -> str:
    """How a source is named to the user: the built-ins say what they are."""
    return {TINY_SOURCE: TINY_LABEL, TRAINED_SOURCE: TRAINED_LABEL}.get(source, source)


def builtin_folder(source: str) -> Path:
    """The folder a shipped built-in source loads from (through the normal folder path)."""
    folder = trained_folder()
    if not (folder / "config.json").is_file():
        raise WeightsMissingError(
            f"The built-in {source!r} model is not installed ({folder} is missing).",
            path=folder,
            hint="Reinstall the workbench; $use_tiny.",
        )
    return folder


def missing_message(source: str) -> WeightsMissingError:
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )
    why = "HF_HUB_OFFLINE is set" if offline() else "the Hugging Face Hub could not be reached"
    return WeightsMissingError(
        f"The model {source!r} is not a local folder and is not in the Hugging Face cache ({cache}), and {why}.",
        hint=(
            f"Download it on a connected machine with `hf download {source}` (or set HF_HOME to a cache that "
            "holds it), or $local_folder with config.json and *.safetensors; $use_tiny."
        ),
    )


def looks_like_path(source: str) -> bool:
    """A local path rather than a hub id (``org/name``): absolute, relative with dots, home, or several parts."""
    if source.startswith(("/", "./", "../", "~", ".\\")) or (len(source) > 1 and source[1] == ":"):
        return True
    return source.count("/") > 1 or "\\" in source


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def probe_hub(source: str) -> None:
    """For a hub id that is not cached: one quick lookup instead of the hub client's retries (about 23 s of
    repeated warnings when the network is down)."""
    if offline():
        return
    import logging

    from huggingface_hub import model_info, try_to_load_from_cache
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(source, "config.json"), str):
        return
    hub_logger = logging.getLogger("huggingface_hub")
    level = hub_logger.level
    hub_logger.setLevel(logging.ERROR)
    try:
        model_info(source, timeout=10)
    except GatedRepoError as exc:
        raise WeightsMissingError(
            f"The model {source!r} is gated on the Hugging Face Hub.",
            hint="Accept its licence on the model page and log in with `hf auth login`.",
        ) from exc
    except RepositoryNotFoundError as exc:
        raise WeightsMissingError(
            f"There is no model {source!r} on the Hugging Face Hub (or it is private).",
            hint="Check the spelling (org/name), or $local_folder.",
        ) from exc
    except Exception as exc:
        raise missing_message(source) from exc
    finally:
        hub_logger.setLevel(level)


def load_config(source: str) -> Any:
    """The model config, from the tiny builder, a folder, or the hub/cache. No weights are read."""
    if is_tiny(source):
        from inference.weights.tiny import build_config, build_tokenizer

        return build_config(build_tokenizer())
    if source == TRAINED_SOURCE:
        source = str(builtin_folder(source))
    from transformers import AutoConfig

    path = Path(source).expanduser()
    if path.exists() and not (path / "config.json").is_file():
        raise ModelLoadError(f"{path} has no config.json; it is not a model folder.", path=path)
    if not path.exists() and looks_like_path(source):
        raise ModelLoadError(
            f"There is no folder {path}.",
            path=path,
            hint="Pass a folder that holds config.json and *.safetensors, a Hugging Face id (org/name), or tiny.",
        )
    if not path.exists():
        probe_hub(source)
    try:
        config = AutoConfig.from_pretrained(str(path) if path.exists() else source, trust_remote_code=False)
    except OSError as exc:
        if path.exists():
            raise ModelLoadError(f"Could not read the config in {path}: {exc}", path=path) from exc
        raise missing_message(source) from exc
    except ValueError as exc:
        raise ModelLoadError(f"{source!r} is not a model this transformers version knows: {exc}") from exc
    if getattr(config, "model_type", None) != "diffusion_gemma":
        raise ModelLoadError(
            f"{source!r} is a {getattr(config, 'model_type', 'unknown')!r} model; the workbench runs DiffusionGemma "
            "(model_type 'diffusion_gemma')."
        )
    return config


def snapshot_folder(source: str) -> Path:
    """The local snapshot of a hub id (downloaded if the hub is reachable and it is not cached)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(source, allow_patterns=["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt"])
        )
    except Exception as exc:
        raise missing_message(source) from exc


def generation_defaults(source: str) -> Any:
    """The diffusion parameters a checkpoint ships with (its generation config), else the library's; no weights are
    read. Returns a :class:`inference.runtime.params.DiffusionParams`."""
    from inference.runtime.params import DiffusionParams

    generation_config = None
    try:
        if is_tiny(source.strip()):
            from inference.weights.tiny import build_generation_config, build_tokenizer

            generation_config = build_generation_config(build_tokenizer())
        else:
            from transformers import GenerationConfig

            where = str(trained_folder()) if source.strip() == TRAINED_SOURCE else source
            generation_config = GenerationConfig.from_pretrained(where)
    except Exception:  # noqa: BLE001 - no readable generation config: the library's defaults
        generation_config = None
    return DiffusionParams.from_generation_config(generation_config)
