"""4-bit NF4 loading: exact against a dequantized twin, faithful to the unquantized model, tied once, cached safely.

Everything runs the real pieces: transformers' DiffusionGemma classes (tiny config), bitsandbytes' CPU kernels, and
safetensors files written to temp folders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.errors import ModelLoadError
from inference.runtime.engine import DiffusionEngine
from inference.runtime.events import Finished
from inference.weights.loading import load_model
from inference.weights.quant import (
    NF4Experts,
    QuantSettings,
    StateDictSource,
    aliases,
    bitsandbytes_module,
    byte_groups,
    quantize_model,
)
from inference.weights.quant_cache import MODEL_FILE, SafetensorsReader, cache_folder, read_header
from tests.helpers import chat_inputs, shared_path
from tests.model_helpers import save_tiny

ROOT = Path(__file__).resolve().parents[1]
SEEDS = (0, 1, 2)
# NF4 vs fp32 on the random tiny model, this file's prompts and seeds (docs/model.md): sampled-token agreement,
# teacher-forced argmax agreement, median logit cosine; each asserted FIDELITY_MARGIN under the figure.
TINY_FIDELITY = (0.832, 0.751, 0.860)
TRAINED_FIDELITY = (0.996, 0.993, 0.990)  # the same on tiny-trained, its own parse prompts
FIDELITY_MARGIN = 0.05


@pytest.fixture(scope="module")
def quantized(tiny_pair):
    model, _ = tiny_pair
    quantized = quantize_model(model.config, StateDictSource(model.state_dict()), QuantSettings(), torch.float32)
    quantized.generation_config = model.generation_config
    return quantized


def dequantized_twin(quantized_model, tiny_pair):
    """An fp32 DiffusionGemma holding exactly the values the quantized model computes with."""
    import copy

    bnb = bitsandbytes_module()
    twin = copy.deepcopy(tiny_pair[0])
    state = twin.state_dict()
    with torch.no_grad():
        for name, module in quantized_model.named_modules():
            if isinstance(module, bnb.nn.Linear4bit):
                values = {
                    name + ".weight": bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
                }
            elif isinstance(module, NF4Experts):
                values = {
                    f"{name}.{w}_proj": torch.stack(
                        [module.dequantize(w, e, torch.float32) for e in range(module.num_experts)]
                    )
                    for w in NF4Experts.WEIGHTS
                }
            else:
                continue
            for key, value in values.items():
                for alias in aliases(key):
                    if alias in state:
                        state[alias].copy_(value)
    return twin


def engine_ids(model, processor, prompt, seed, images=(), max_new_tokens=512):
    engine = DiffusionEngine(model, processor.tokenizer)
    params = engine.default_params(seed=seed, max_new_tokens=max_new_tokens, max_denoising_steps=8)
    events = list(engine.generate(chat_inputs(processor, prompt, images), params))
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1].ids


def test_exact_against_a_dequantized_fp32_twin(quantized, tiny_pair):
    processor = tiny_pair[1]
    twin = dequantized_twin(quantized, tiny_pair)
    generator = torch.Generator().manual_seed(5)
    ids = torch.randint(20, 200, (2, 48), generator=generator)
    canvas = torch.randint(20, 200, (2, 256), generator=generator)
    with torch.inference_mode():
        ours = quantized(input_ids=ids, decoder_input_ids=canvas).logits
        theirs = twin(input_ids=ids, decoder_input_ids=canvas).logits
        plain = tiny_pair[0](input_ids=ids, decoder_input_ids=canvas).logits
    diff = (ours - theirs).abs().max().item()
    print(
        f"quantized vs dequantized twin: max |logit diff| = {diff:.2e}; vs unquantized "
        f"{(ours - plain).abs().max().item():.3f}"
    )
    assert diff <= 1e-5
    assert (ours - plain).abs().max().item() > 1e-3  # it really is quantized
    for seed in SEEDS:
        np.testing.assert_array_equal(
            engine_ids(quantized, processor, "Exact twin", seed), engine_ids(twin, processor, "Exact twin", seed)
        )


class Agreement:
    """Quantized vs unquantized: the engine's sampled tokens (same seed), and the argmax and cosine of the logits for
    the same prompt and canvas (teacher-forced)."""

    def __init__(self) -> None:
        self.agree = self.total = self.argmax_agree = self.argmax_total = 0
        self.cosines: list[float] = []

    def sampled(self, a: np.ndarray, b: np.ndarray) -> None:
        self.agree += int((a == b).sum())
        self.total += a.size

    def forced(self, a, b, inputs, canvas) -> None:
        with torch.inference_mode():
            qa = a(**inputs, decoder_input_ids=canvas).logits
            qb = b(**inputs, decoder_input_ids=canvas).logits
        self.argmax_agree += int((qa.argmax(-1) == qb.argmax(-1)).sum())
        self.argmax_total += canvas.numel()
        self.cosines.append(torch.nn.functional.cosine_similarity(qa.flatten(), qb.flatten(), dim=0).item())

    def figures(self) -> tuple[float, float, float]:
        return self.agree / self.total, self.argmax_agree / self.argmax_total, float(np.median(self.cosines))

    def summary(self) -> str:
        rate, argmax_rate, cosine = self.figures()
        return (
            f"sampled-token agreement {rate:.3f}, teacher-forced argmax agreement {argmax_rate:.3f}, "
            f"logit cosine median {cosine:.3f}"
        )


def test_fidelity_to_the_unquantized_model(quantized, tiny_pair):
    """Two figures: the engine's sampled tokens (same seed), and the argmax of the logits for the same prompt and
    canvas (teacher-forced). The tiny model has random weights: its logits are nearly flat and its router picks 2 of
    4 experts by near ties, so NF4's 9 % weight error flips routing and samples far more than in a trained model,
    and other prompts give other figures. The run is deterministic; docs/model.md quotes ``TINY_FIDELITY`` and each
    figure is asserted ``FIDELITY_MARGIN`` under it."""
    model, processor = tiny_pair
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    prompts = [
        ("Summarise the quarterly report in three lines.", ()),
        ("What is in this picture?", (image,)),
        ("List the parties to the agreement and the date it was signed.", ()),
    ]
    tally = Agreement()
    generator = torch.Generator().manual_seed(3)
    for seed in SEEDS:
        for prompt, images in prompts:
            tally.sampled(
                engine_ids(quantized, processor, prompt, seed, images, max_new_tokens=256),
                engine_ids(model, processor, prompt, seed, images, max_new_tokens=256),
            )
            tally.forced(
                quantized,
                model,
                chat_inputs(processor, prompt, images),
                torch.randint(20, 260, (1, 256), generator=generator),
            )
    rate, argmax_rate, cosine = tally.figures()
    print(
        f"NF4 vs unquantized tiny (fp32 compute), {len(SEEDS)} seeds x {len(prompts)} prompts (one with an image): "
        f"{tally.summary()}"
    )
    floors = [figure - FIDELITY_MARGIN for figure in TINY_FIDELITY]
    assert rate >= floors[0] and argmax_rate >= floors[1] and cosine >= floors[2], tally.summary()


@pytest.mark.slow
@pytest.mark.skipif(
    not (ROOT / "resources" / "tiny-trained" / "model.safetensors").is_file(),
    reason="resources/tiny-trained is not built",
)
def test_fidelity_of_the_trained_model(tmp_path, monkeypatch):
    """The same figures on the shipped demonstration model (trained weights: peaked logits, decided routing), loaded
    both ways through ``load_model``: its own task's prompts (parse prompts with a page image), 3 seeds, default
    parameters (48 steps, adaptive stopping). docs/model.md quotes ``TRAINED_FIDELITY``; each figure is asserted
    ``FIDELITY_MARGIN`` under it."""
    from inference.prompts import PromptBuilder
    from training.pages import page_image, parse_parts, prompt_inputs
    from training.train import held_out_hints

    monkeypatch.setenv("DWB_QUANT_CACHE", str(tmp_path / "qcache"))
    plain = load_model("tiny-trained", dtype="fp32", device="cpu", quant="none")
    nf4 = load_model("tiny-trained", dtype="fp32", device="cpu", quant="nf4")
    assert nf4.quant == "nf4" and "(NF4)" in nf4.label
    processor = plain.processor
    builder = PromptBuilder(processor)
    import random

    rng = random.Random(0)
    hints = held_out_hints(processor, 3, 8, 120, seed=11)
    tally = Agreement()
    for i, hint in enumerate(hints):
        inputs = prompt_inputs(builder, [parse_parts("page.pdf", i + 1, hint, page_image((612, 792), rng, 12))])
        for seed in SEEDS:
            runs = []
            for loaded in (nf4, plain):
                engine = DiffusionEngine(loaded.model, processor.tokenizer)
                events = list(engine.generate(inputs, engine.default_params(seed=seed)))
                assert isinstance(events[-1], Finished), events[-1]
                runs.append(events[-1].ids)
            tally.sampled(*runs)
        tally.forced(
            nf4.model,
            plain.model,
            inputs,
            torch.randint(20, 1000, (1, 256), generator=torch.Generator().manual_seed(i)),
        )
    print(
        f"NF4 vs unquantized tiny-trained (fp32 compute), {len(SEEDS)} seeds x {len(hints)} parse prompts with a "
        f"page image: {tally.summary()}"
    )
    floors = [figure - FIDELITY_MARGIN for figure in TRAINED_FIDELITY]
    assert all(f >= floor for f, floor in zip(tally.figures(), floors, strict=True)), tally.summary()


def test_text_modules_are_shared_and_every_linear_and_expert_is_4bit(quantized):
    bnb = bitsandbytes_module()
    encoder = quantized.model.encoder.language_model
    decoder = quantized.model.decoder
    assert encoder.embed_tokens is decoder.embed_tokens and encoder.norm is decoder.norm
    assert quantized.lm_head.weight is decoder.embed_tokens.weight
    for enc, dec in zip(encoder.layers, decoder.layers, strict=True):
        assert enc is not dec
        for name in ("mlp", "router", "experts", "input_layernorm", "post_feedforward_layernorm_2"):
            assert getattr(enc, name) is getattr(dec, name), name
        for name in ("q_proj", "k_proj", "o_proj", "q_norm", "k_norm"):
            assert getattr(enc.self_attn, name) is getattr(dec.self_attn, name), name
        assert isinstance(dec.experts, NF4Experts)
    plain_linears = [
        name
        for name, module in quantized.named_modules()
        if type(module) is torch.nn.Linear and name.startswith(("model.decoder", "model.encoder.lang"))
    ]
    assert all(".router." in name for name in plain_linears), plain_linears
    groups = byte_groups(quantized)
    print({k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in groups.items()})
    assert groups["experts"]["bytes_per_param"] <= 0.55
    assert groups["text_linear"]["bytes_per_param"] <= 0.55
    n_linear = sum(isinstance(m, bnb.nn.Linear4bit) for m in decoder.modules())
    assert n_linear == 2 * 3 + 4 + 3 + 3  # attention (q,k,o + v on sliding), MLP x 2 layers, self-conditioning


@pytest.fixture()
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DWB_QUANT_CACHE", str(tmp_path / "qcache"))
    return tmp_path / "qcache"


def test_cache_reload_is_identical_and_changes_rebuild(tmp_path, cache_env, tiny_pair):
    folder = save_tiny(tmp_path / "tiny")
    first = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    again = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    assert not first.extra["from_cache"] and again.extra["from_cache"]
    (entry,) = [p for p in cache_env.iterdir()]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["settings"]["scheme"] == "nf4" and "bitsandbytes" in manifest["versions"]
    header, _ = read_header(entry / MODEL_FILE)  # a real safetensors file
    assert any(name.endswith("experts.gate_up_q") for name in header)
    generator = torch.Generator().manual_seed(1)
    ids, canvas = (
        torch.randint(20, 200, (1, 30), generator=generator),
        torch.randint(20, 200, (1, 256), generator=generator),
    )
    with torch.inference_mode():
        a = first.model(input_ids=ids, decoder_input_ids=canvas).logits
        b = again.model(input_ids=ids, decoder_input_ids=canvas).logits
    assert torch.equal(a, b)
    # another compute dtype is another cache entry
    load_model(str(folder), dtype="bf16", device="cpu", quant="nf4")
    assert len(list(cache_env.iterdir())) == 2
    # a changed source rebuilds: rewrite the weights with one tensor changed
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    state = load_file(weights)
    key = next(k for k in state if k.endswith("mlp.gate_proj.weight"))
    state[key] = state[key] * 2
    save_file(state, weights, metadata={"format": "pt"})
    changed = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    assert not changed.extra["from_cache"]
    with torch.inference_mode():
        c = changed.model(input_ids=ids, decoder_input_ids=canvas).logits
    assert not torch.equal(a, c)


def _damage_truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _damage_header_only(path):
    header, start = read_header(path)
    path.write_bytes(path.read_bytes()[:start])


def _damage_one_expert(path):
    """One packed expert's bytes replaced with random bytes of the same size: the file stays well formed."""
    header, start = read_header(path)
    name = next(n for n in header if n.endswith("experts.gate_up_q"))
    begin, end = header[name]["data_offsets"]
    data = bytearray(path.read_bytes())
    data[start + begin : start + end] = os.urandom(end - begin)
    path.write_bytes(bytes(data))


def _damage_header(path):
    data = bytearray(path.read_bytes())
    data[8:40] = b"#" * 32  # the JSON header no longer parses
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_damage_truncated, _damage_header_only, _damage_one_expert, _damage_header])
def test_a_damaged_cache_is_named_in_one_line_and_rebuilt(tmp_path, cache_env, damage):
    folder = save_tiny(tmp_path / "tiny")
    first = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    target = cache_folder(folder, QuantSettings(), torch.float32)
    damage(target / MODEL_FILE)
    said = []
    again = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4", progress=said.append)
    assert not again.extra["from_cache"]  # never built from the damaged file
    damaged = [m for m in said if isinstance(m, str) and m.startswith("the quantized cache is damaged")]
    assert len(damaged) == 1 and "rebuilding it from" in damaged[0] and "\n" not in damaged[0]
    ids = torch.randint(20, 200, (1, 30), generator=torch.Generator().manual_seed(2))
    canvas = torch.randint(20, 200, (1, 256), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        assert torch.equal(
            first.model(input_ids=ids, decoder_input_ids=canvas).logits,
            again.model(input_ids=ids, decoder_input_ids=canvas).logits,
        )
    third = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    assert third.extra["from_cache"]  # the rebuilt cache verifies


def test_a_damaged_cache_without_its_source_names_the_folder_to_delete(tmp_path, cache_env):
    """A hub snapshot whose blob is gone (offline, the hub cache pruned): the damaged cache cannot be rebuilt, so the
    error says so and names the exact folder to delete."""
    import hashlib
    import shutil

    built = save_tiny(tmp_path / "built")
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / "rev1"
    blobs = tmp_path / "models--org--tiny" / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for path in built.iterdir():
        if path.suffix == ".safetensors":  # the hub names each blob by its SHA-256
            blob = blobs / hashlib.sha256(path.read_bytes()).hexdigest()
            shutil.copyfile(path, blob)
            (snapshot / path.name).symlink_to(blob)
        else:
            shutil.copyfile(path, snapshot / path.name)
    load_model(str(snapshot), dtype="fp32", device="cpu", quant="nf4")
    target = cache_folder(snapshot, QuantSettings(), torch.float32)
    _damage_one_expert(target / MODEL_FILE)
    for blob in blobs.iterdir():
        blob.unlink()
    said = []
    with pytest.raises(ModelLoadError) as err:
        load_model(str(snapshot), dtype="fp32", device="cpu", quant="nf4", progress=said.append)
    assert any(isinstance(m, str) and m.startswith("the quantized cache is damaged") for m in said)
    assert (
        err.value.hint
        == f"The quantized cache {target} is damaged and cannot be rebuilt without the source: delete it."
    )
    assert "Traceback" not in err.value.user_message()


@pytest.mark.parametrize("quant", ["none", "nf4"])
def test_a_truncated_checkpoint_is_one_line_naming_the_file(tmp_path, cache_env, quant):
    folder = save_tiny(tmp_path / "tiny")
    weights = folder / "model.safetensors"
    _damage_truncated(weights)
    with pytest.raises(ModelLoadError) as err:
        load_model(str(folder), dtype="fp32", device="cpu", quant=quant)
    message = err.value.user_message()
    assert message.startswith(f"{weights}: cut off:") and "incomplete download" in message
    assert len(message.splitlines()) <= 2  # the message and its hint


def test_a_killed_writer_leaves_nothing_that_loads(tmp_path, cache_env):
    folder = save_tiny(tmp_path / "tiny")
    script = textwrap.dedent(f"""
        import os, signal
        import inference.weights.quant_cache as quant_cache
        real = quant_cache.write_safetensors
        def dying(path, tensors, metadata=None, on_tensor=None):
            def step(done, total):
                if done == total // 2:
                    os.kill(os.getpid(), signal.SIGKILL)
            real(path, tensors, metadata, step)
        quant_cache.write_safetensors = dying
        from inference.weights.loading import load_model
        load_model({str(folder)!r}, dtype="fp32", device="cpu", quant="nf4")
    """)
    env = {**os.environ, "DWB_QUANT_CACHE": str(cache_env), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    leftovers = list(cache_env.iterdir())
    assert leftovers and all(".partial-" in p.name for p in leftovers)  # it died while writing, aside
    target = cache_folder(folder, QuantSettings(), torch.float32)
    assert not target.exists()
    loaded = load_model(str(folder), dtype="fp32", device="cpu", quant="nf4")
    assert not loaded.extra["from_cache"] and target.is_dir()
    assert [p for p in cache_env.iterdir()] == [target]  # the dead writer's folder was cleared


@pytest.mark.parametrize("ends", [True, False], ids=["ends-in-the-first-canvas", "runs-to-max-tokens"])
def test_tiny_nf4_runs_the_engine_in_bf16_on_the_fused_cpu_kernels(tiny_pair, ends):
    from tests.model_helpers import towards

    loaded = load_model("tiny", dtype="auto", device="cpu", quant="nf4")
    assert loaded.quant == "nf4" and loaded.dtype == "bf16"
    bnb = bitsandbytes_module()
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers and all(m.compute_dtype == torch.bfloat16 for m in layers)
    eos = loaded.tokenizer.eos_token_id
    towards(loaded.model, eos if ends else loaded.tokenizer.convert_tokens_to_ids("a"), strength=30.0)
    ids = engine_ids(loaded.model, loaded.processor, "bf16 compute", 0)
    # whole canvases of the 512 tokens asked for: one when the first ends on end-of-sequence, else two
    assert ids.shape == ((1, 256) if ends else (1, 512))
    assert (eos in ids[0].tolist()) == ends


def test_reader_reads_rows_without_the_rest(tmp_path):
    from safetensors.torch import save_file

    tensor = torch.arange(6 * 4 * 3, dtype=torch.float32).reshape(6, 4, 3).to(torch.bfloat16)
    save_file({"a": tensor, "b": torch.ones(3, dtype=torch.int64)}, tmp_path / "x.safetensors")
    reader = SafetensorsReader(tmp_path)
    assert torch.equal(reader.get("a", 2, 5), tensor[2:5]) and torch.equal(reader.get("a"), tensor)
    assert torch.equal(reader.get("b"), torch.ones(3, dtype=torch.int64))


STREAM_SCRIPT = """
import json, sys, time
import torch
from inference.weights.loading import load_model
import inference.weights.quant, transformers.models.diffusion_gemma.modeling_diffusion_gemma
# the process's footprint before the load (libraries imported); VmHWM, below, is this process's own high-water mark:
# ru_maxrss would keep the parent's peak across fork and exec
before = int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) * 1024
t0 = time.perf_counter()
loaded = load_model(sys.argv[1], dtype="bf16", device="cpu", quant="nf4")
seconds = time.perf_counter() - t0
from inference.weights.quant import byte_groups
groups = byte_groups(loaded.model)
peak = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) * 1024
print(json.dumps({"peak": peak, "before": before, "seconds": seconds,
                  "quantized": sum(g["bytes"] for g in groups.values()), "cached": loaded.extra["from_cache"]}))
"""


LAYERS = 4  # three sliding-window layers and a full-attention one: holding all in bf16 would be 3 layers (1.1 GiB) over


@pytest.mark.slow
def test_streaming_a_sharded_checkpoint_keeps_one_layer_resident(tmp_path):
    """4 layers at the real widths (experts of 2816 x 704, 32 of them instead of 128 to keep it short), a shard per
    layer with an index: the load's peak above the process's footprint before it <= the quantized size + one layer in
    bf16 + 0.5 GiB, measured in a fresh process. Holding every layer in bf16 would be 3 layers (1.1 GiB) over that."""
    from safetensors.torch import save_file
    from transformers import DiffusionGemmaConfig

    from inference.weights.quant import empty_model

    raw = json.loads(shared_path("models", "diffusiongemma-26B-A4B-approx", "config.json").read_text())
    text = raw["text_config"]
    text["num_hidden_layers"] = LAYERS
    text["layer_types"] = ["sliding_attention"] * (LAYERS - 1) + ["full_attention"]
    text["per_layer_config"] = {f"{LAYERS - 1:02d}": text["per_layer_config"]["05"]}  # the full layer's heads
    text["vocab_size"], text["num_experts"] = 4096, 32
    raw["vision_config"]["num_hidden_layers"] = 1
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(raw))
    from inference.weights.tiny import build_processor

    build_processor().save_pretrained(folder)  # any processor: this test is about the weights
    config = DiffusionGemmaConfig.from_pretrained(folder)
    assert config.text_config.layer_types[-1] == "full_attention"
    model = empty_model(config, torch.bfloat16)
    names = [n for n, _ in model.named_parameters()]  # tied text params are listed once (as encoder names)
    shapes = dict(model.named_parameters())
    generator = torch.Generator().manual_seed(0)
    shards: list[list[str]] = [[] for _ in range(LAYERS)]
    for name in names:
        layer = name.split(".layers.")[1].split(".")[0] if ".language_model.layers." in name else None
        shards[int(layer) if layer is not None else 0].append(name)
    weight_map = {}
    layer_bytes = 0
    for index, shard in enumerate(shards):
        tensors = {}
        for name in shard:
            shape = shapes[name].shape
            tensors[name] = (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
            if ".language_model.layers.0." in name:
                layer_bytes += tensors[name].numel() * 2
        file = f"model-{index + 1:05d}-of-{LAYERS:05d}.safetensors"
        save_file(tensors, folder / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, file))
        del tensors
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    env = {**os.environ, "DWB_QUANT_CACHE": str(tmp_path / "qcache"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", STREAM_SCRIPT, str(folder)], env=env, capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    limit = figures["before"] + figures["quantized"] + layer_bytes + 0.5 * 2**30
    print(
        f"streamed {LAYERS} shards: peak {figures['peak'] / 2**30:.2f} GiB (before the load "
        f"{figures['before'] / 2**30:.2f}), quantized {figures['quantized'] / 2**30:.2f} "
        f"GiB, one layer bf16 {layer_bytes / 2**30:.2f} GiB, limit {limit / 2**30:.2f} GiB, "
        f"{figures['seconds']:.0f} s"
    )
    assert not figures["cached"] and figures["peak"] <= limit


def test_the_default_picks_nf4_when_only_nf4_fits_and_the_cache_is_counted_per_layer_type():
    from transformers import DiffusionGemmaConfig

    from inference.weights.sizing import choose_quant, count_parameters, estimate_memory, kv_cache_bytes

    config = DiffusionGemmaConfig.from_pretrained(shared_path("models", "diffusiongemma-26B-A4B-approx"))
    counts = count_parameters(config)
    gib = 2**30
    quant, why = choose_quant(counts, "auto", "bf16", "cuda", available=24 * gib)
    assert quant == "nf4" and "4-bit NF4" in why and "24.0 GiB free" in why
    assert choose_quant(counts, "auto", "bf16", "cuda", available=80 * gib) == ("none", None)
    assert choose_quant(counts, "auto", "bf16", "cuda", available=8 * gib)[0] == "none"  # neither fits: fit check
    nf4 = estimate_memory(counts, "bf16", "nf4")
    assert 14.0 * gib < nf4.weights_bytes < 14.5 * gib  # 14.23 GiB of unique tensors at full size
    # 5 full-attention layers (2 KV heads x 512) hold every token; 25 sliding layers (8 x 256) hold 1024
    full = 5 * 2 * 262_144 * 2 * 512 * 2
    sliding = 25 * 2 * 1024 * 8 * 256 * 2
    assert kv_cache_bytes(config, 262_144, "bf16") == full + sliding
    with_cache = estimate_memory(counts, "bf16", "nf4", config, 262_144)
    assert with_cache.total_bytes - nf4.total_bytes == full + sliding
