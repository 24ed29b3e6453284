"""The built-in ``tiny`` model: a deterministic random-weight DiffusionGemma with a vision tower.

It is built in memory (no download): a byte-level tokenizer with Gemma 4's special tokens, a ``Gemma4Processor``
with a small chat template, and a two-layer mixture-of-experts DiffusionGemma whose canvas is 256 tokens like the
released checkpoint. Its output is noise by construction; everywhere it shows it is labelled as random weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_SOURCE = "tiny"
TINY_LABEL = "tiny (random weights: output is noise; for tests and demos)"
TINY_SEED = 0

SPECIAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<mask>",
    "<|turn>",
    "<turn|>",
    "<|image>",
    "<image|>",
    "<|image|>",
    "<|audio>",
    "<audio|>",
    "<|audio|>",
    "<|video|>",
)
END_OF_TURN = "<turn|>"

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|turn>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for p in m['content'] %}"
    "{% if p['type'] == 'text' %}{{ p['text'] }}{% elif p['type'] == 'image' %}<|image|>{% endif %}"
    "{% endfor %}{% endif %}<turn|>\n{% endfor %}{% if add_generation_prompt %}<|turn>model\n{% endif %}"
)

# Vision geometry: 4-pixel patches pooled 2x2, at Gemma 4's smallest soft-token budget (70 per image).
PATCH_SIZE = 4
POOLING = 2
MAX_SOFT_TOKENS = 70


def build_tokenizer(core: Any = None) -> Any:
    """The byte-level tokenizer (no merges), or a trained ``tokenizers`` core wrapped the same way."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if core is None:
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
            vocab[char] = len(vocab)
        core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        core.decoder = decoders.ByteLevel()
        core.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        padding_side="left",
        extra_special_tokens={
            "image_token": "<|image|>",
            "boi_token": "<|image>",
            "eoi_token": "<image|>",
            "audio_token": "<|audio|>",
            "boa_token": "<|audio>",
            "eoa_token": "<audio|>",
        },
    )


def build_processor(tokenizer: Any = None) -> Any:
    """A real ``Gemma4Processor`` around the tiny tokenizer (needs torchvision for the image processor)."""
    from transformers import Gemma4Processor
    from transformers.models.gemma4 import Gemma4ImageProcessor, Gemma4VideoProcessor
    from transformers.models.gemma4.feature_extraction_gemma4 import Gemma4AudioFeatureExtractor

    return Gemma4Processor(
        feature_extractor=Gemma4AudioFeatureExtractor(),
        image_processor=Gemma4ImageProcessor(
            patch_size=PATCH_SIZE, max_soft_tokens=MAX_SOFT_TOKENS, pooling_kernel_size=POOLING
        ),
        tokenizer=tokenizer if tokenizer is not None else build_tokenizer(),
        video_processor=Gemma4VideoProcessor(
            patch_size=PATCH_SIZE, max_soft_tokens=MAX_SOFT_TOKENS, pooling_kernel_size=POOLING
        ),
        chat_template=CHAT_TEMPLATE,
        image_seq_length=MAX_SOFT_TOKENS,
    )


def build_config(tokenizer: Any, **text_overrides: Any) -> Any:
    """Widths meet bitsandbytes' fused 4-bit CPU kernels (out-features divisible by 32, in-features >= 64), so that
    the quantized tiny model runs the same kernels as the real one."""
    from transformers import DiffusionGemmaConfig

    text = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        "global_head_dim": 32,
        "sliding_window": 64,
        "layer_types": ["sliding_attention", "full_attention"],
        "num_experts": 4,
        "top_k_experts": 2,
        "moe_intermediate_size": 64,
        "use_bidirectional_attention": "vision",
        "max_position_embeddings": 262_144,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    text.update(text_overrides)
    vision = {
        "model_type": "gemma4_vision",
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "patch_size": PATCH_SIZE,
        "pooling_kernel_size": POOLING,
        "position_embedding_size": 64,
    }
    return DiffusionGemmaConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tokenizer.image_token_id,
        boi_token_id=tokenizer.convert_tokens_to_ids("<|image>"),
        eoi_token_id=tokenizer.convert_tokens_to_ids("<image|>"),
        canvas_length=256,
    )


def build_generation_config(tokenizer: Any) -> Any:
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import (
        DiffusionGemmaGenerationConfig,
        EntropyBoundSamplerConfig,
    )

    return DiffusionGemmaGenerationConfig(
        max_new_tokens=256,
        max_denoising_steps=48,
        sampler_config=EntropyBoundSamplerConfig(entropy_bound=0.1),
        t_min=0.4,
        t_max=0.8,
        stability_threshold=1,
        confidence_threshold=0.005,
        eos_token_id=[tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(END_OF_TURN)],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


def build_tiny(dtype: Any = None, seed: int = TINY_SEED) -> tuple[Any, Any]:
    """Return ``(model, processor)``: the same weights for the same seed, whatever the global RNG state."""
    import torch
    from transformers import DiffusionGemmaForBlockDiffusion

    processor = build_processor()
    config = build_config(processor.tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiffusionGemmaForBlockDiffusion(config)
    model.generation_config = build_generation_config(processor.tokenizer)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval(), processor


# ---------------------------------------------------------------------------------------------------- tiny-trained
TRAINED_SOURCE = "tiny-trained"
TRAINED_LABEL = "tiny-trained (demonstration model trained to transcribe short text pages; not a document model)"
# The trained model's text stack: three layers; the sliding window covers a whole page prompt (the decoder's sliding
# layers see only the window of the cache, and copying the hint relies on them).
TRAINED_TEXT = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "moe_intermediate_size": 128,
    "num_hidden_layers": 3,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention"],
    "sliding_window": 1024,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}


def trained_folder() -> Path:
    """The shipped ``tiny-trained`` model folder (``resources/tiny-trained``: safetensors, config, processor)."""
    from inference.resources import resource_path

    return resource_path(TRAINED_SOURCE)
