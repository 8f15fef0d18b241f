"""BERT-style text encoder through Hugging Face `transformers` (optional extra `bmmal[text]`), offline only.

The model and its tokenizer are read from a local directory (config.json, weights, vocabulary) or from
the user's Hugging Face cache by name (e.g. "bert-base-uncased" after `huggingface-cli download
bert-base-uncased`); nothing is ever downloaded (`local_files_only`). Text inputs are int64 tensors
[B, 2, L]: token ids and attention mask, as `tokenize` makes them. The embedding is the last hidden state
of the first ([CLS]) token, as in the reference (`out_dim` = hidden size, 768 for BERT-base).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from bmmal.errors import BmmalError
from bmmal.models.encoders import register_encoder

INSTALL_HINT = "pip install 'bmmal[text]'"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise BmmalError(f"the text encoder needs the Python package 'transformers': {INSTALL_HINT}") from None
    return transformers


def _not_found(path: str, what: str, error: Exception) -> BmmalError:
    return BmmalError(f"cannot load the {what} {path!r} from local files ({str(error).splitlines()[0]}); give "
                      "a local directory holding it, or put it in the Hugging Face cache once on a machine "
                      f"with internet (huggingface-cli download {path})")


def load_tokenizer(path: str):
    transformers = _transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as e:
        raise _not_found(path, "tokenizer", e) from None


def tokenize(texts: Sequence[str], path: str, max_tokens: int = 100) -> np.ndarray:
    """[N, 2, max_tokens] int64: token ids and attention mask, padded and truncated to `max_tokens`."""
    tokenizer = load_tokenizer(path)
    enc = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_tokens,
                    return_attention_mask=True)
    return np.stack([np.asarray(enc["input_ids"], dtype=np.int64),
                     np.asarray(enc["attention_mask"], dtype=np.int64)], axis=1)


class TransformerTextEncoder(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.out_dim = int(model.config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0].long(), x[:, 1].long()
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]


@register_encoder("bert")
def bert_encoder(input_shape: tuple[int, ...], path: str = "bert-base-uncased", pretrained: bool = True
                 ) -> TransformerTextEncoder:
    """`path`: local directory or cached model name; `pretrained: false` builds the same architecture
    (from the config at `path`) with random weights."""
    if len(input_shape) != 2 or input_shape[0] != 2:
        raise BmmalError(f"bert expects token inputs of shape [2, length], got {list(input_shape)}")
    transformers = _transformers()
    try:
        if pretrained:
            model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        else:
            config = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            model = transformers.AutoModel.from_config(config)
    except (OSError, ValueError) as e:
        raise _not_found(path, "text model", e) from None
    return TransformerTextEncoder(model)
