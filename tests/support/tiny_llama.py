"""A tiny random-weight model shaped like Llama 3.1, built locally in seconds (no hub, no download).

vLLM loads it like the real thing: a ``LlamaForCausalLM`` with grouped-query attention, llama3 rope
scaling, a byte-level BPE tokenizer with Llama 3's special tokens and (optionally) its chat
template. Its weights are random, so what it writes is gibberish: tests built on it assert counts,
seeds, stops and token accounting, never content.

Usage::

    from tests.support.tiny_llama import build_tiny_llama

    model_dir = build_tiny_llama(tmp_path / "tiny-llama")  # a folder for LLM(model=...)

The build is deterministic (fixed seeds, fixed training text), needs ``transformers``,
``tokenizers`` and ``torch`` (the ``cpu`` extra brings all three), and takes about 10 s on two
cores. The tokenizer's vocabulary is small (about 600 pieces): its training text is short.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

__all__ = ["LLAMA3_CHAT_TEMPLATE", "TINY_LLAMA_CONFIG", "build_tiny_llama"]

#: Llama 3.1's chat template, reduced to what the plumbing needs (no tools, no date header).
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    " + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- endif %}"
)

_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
)

#: Llama-3.1-8B's architecture, scaled down. head_dim must be >= 32 for vLLM's CPU attention.
TINY_LLAMA_CONFIG: dict[str, object] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 1024,
    },
    "tie_word_embeddings": False,
    "hidden_act": "silu",
}

_WORDS = re.findall(
    r"\S+",
    """
    def return if else elif for while in range len list dict set tuple int str float bool None
    True False and or not is import from as class self lambda yield with try except raise pass
    break continue sorted sum min max abs zip enumerate map filter print assert candidate x y n
    a b c i j k s t values numbers result total count string text the of to a an is are
    """,
)
_SYMBOLS = ("(", ")", ":", ",", ".", "[", "]", "{", "}", "=", "+", "-", "*", "/", "%", "<", ">")


def _training_text(lines: int, seed: int) -> list[str]:
    """Code-like lines, so the BPE learns merges for indentation, names and punctuation."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        indent = "    " * rng.randrange(3)
        parts = [rng.choice(_WORDS) if rng.random() < 0.7 else rng.choice(_SYMBOLS)]
        parts += [
            rng.choice(_WORDS) if rng.random() < 0.6 else rng.choice(_SYMBOLS)
            for _ in range(rng.randrange(2, 12))
        ]
        out.append(indent + " ".join(parts) + "\n")
    # Every printable ASCII character appears, so no prompt ever falls back to an unknown piece.
    out.append("".join(chr(c) for c in range(32, 127)) + "\n\t\r\n")
    return out


def build_tiny_llama(
    path: Path, *, chat_template: bool = True, vocab_size: int = 1024, seed: int = 0
) -> Path:
    """Write a tiny random-weight Llama-3.1-shaped model into ``path`` and return ``path``.

    ``chat_template=False`` builds a base model (its tokenizer config has no chat template), so a
    backend treats it as a completion model. An existing build in ``path`` is reused.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    path = Path(path)
    if (path / "config.json").is_file() and (path / "tokenizer.json").is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(_SPECIAL_TOKENS),
        special_tokens=[],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_training_text(4000, seed), trainer=trainer)
    tokenizer.add_special_tokens(list(_SPECIAL_TOKENS))
    bos_id = tokenizer.token_to_id("<|begin_of_text|>")
    # Like Llama 3: BOS is prepended to every encoded text.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos_id)],
    )
    eos = "<|eot_id|>" if chat_template else "<|end_of_text|>"
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token=eos,
        pad_token="<|end_of_text|>",
        model_max_length=int(str(TINY_LLAMA_CONFIG["max_position_embeddings"])),
    )
    if chat_template:
        fast.chat_template = LLAMA3_CHAT_TEMPLATE
    fast.save_pretrained(path)

    eos_ids = [tokenizer.token_to_id("<|end_of_text|>")]
    if chat_template:
        eos_ids.append(tokenizer.token_to_id("<|eot_id|>"))
    config = LlamaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        bos_token_id=bos_id,
        eos_token_id=eos_ids if len(eos_ids) > 1 else eos_ids[0],
        torch_dtype="bfloat16",
        **TINY_LLAMA_CONFIG,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, safe_serialization=True)
    # vLLM reads the generation config for default stop ids; keep it consistent with the config.
    (path / "generation_config.json").write_text(
        json.dumps({"bos_token_id": bos_id, "eos_token_id": config.eos_token_id})
    )
    return path
