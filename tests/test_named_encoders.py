"""Models named by their library (st:, hf:, timm:, open_clip:): tiny randomly initialised models saved in each
library's own format to a temporary folder (and a fake Hugging Face cache), loaded with the network disabled.

timm and open_clip cannot be installed beside the pinned torch here (they need torchvision); for them only the
missing-package message is checked."""

import importlib.util
import json
import shutil
import socket

import numpy as np
import pytest

from bmmal import features
from bmmal.errors import BmmalError
from bmmal.features import named

pytest.importorskip("sentence_transformers")
pytest.importorskip("soundfile")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, no permission to download, an empty Hugging Face cache, and no model loaded before."""
    import huggingface_hub.constants

    def refuse(*args, **kwargs):
        raise OSError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv(named.ALLOW_DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(named, "_LOADED", {})


def _bert(folder, seed=0):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "dog", "the", "sat", "on", "mat"]
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, max_position_embeddings=32)).save_pretrained(folder)
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    return folder


def _sentence_transformer(folder, seed=0):
    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers.models import Pooling, Transformer

    bert = _bert(folder.with_name(folder.name + "-bert"), seed)
    SentenceTransformer(modules=[Transformer(str(bert)), Pooling(8, "mean")], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny model per format: sentence-transformers, and transformers text, audio, image and CLIP."""
    import torch
    from transformers import (
        ASTConfig,
        ASTFeatureExtractor,
        ASTModel,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
        ViTConfig,
        ViTImageProcessor,
        ViTModel,
    )

    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    small = {"hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16}
    ASTModel(ASTConfig(**small, num_mel_bins=16, max_length=32, frequency_stride=16, time_stride=16)
             ).save_pretrained(root / "ast")
    ASTFeatureExtractor(num_mel_bins=16, max_length=32, sampling_rate=16000).save_pretrained(root / "ast")
    ViTModel(ViTConfig(**small, image_size=32, patch_size=16)).save_pretrained(root / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    letters = list("abcdefghijklmnopqrstuvwxyz")
    tokens = ["<|startoftext|>", "<|endoftext|>", *letters, *(c + "</w>" for c in letters)]
    clip = CLIPConfig(text_config={**small, "vocab_size": len(tokens), "max_position_embeddings": 32,
                                   "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
                      vision_config={**small, "image_size": 32, "patch_size": 16}, projection_dim=6)
    CLIPModel(clip).save_pretrained(root / "clip")
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[])
                  ).save_pretrained(root / "clip")
    return {"st": _sentence_transformer(root / "st"), "bert": _bert(root / "bert"), "ast": root / "ast",
            "vit": root / "vit", "clip": root / "clip", "root": root}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    import soundfile
    from PIL import Image

    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    images, sounds = [], []
    for i in range(3):
        image = folder / f"i{i}.png"
        Image.fromarray(rng.integers(0, 255, (20 + 5 * i, 30, 3), dtype=np.uint8)).save(image)
        sound = folder / f"s{i}.wav"
        soundfile.write(sound, rng.normal(size=8000 + 1000 * i).astype(np.float32) * 0.1, 16000)
        images.append(image)
        sounds.append(sound)
    return {"image": images, "audio": sounds, "text": ["the cat sat", "a dog", "the mat on a mat"]}


@pytest.mark.parametrize("library, model, kind", [("st", "st", "text"), ("hf", "bert", "text"),
                                                  ("hf", "ast", "audio"), ("hf", "vit", "image"),
                                                  ("hf", "clip", "image"), ("hf", "clip", "text")])
def test_each_format_loads_from_a_local_folder_and_encodes(tiny, inputs, library, model, kind):
    extractor = features.for_input(f"{library}:{tiny[model]}", kind)
    x = extractor.encode(inputs[kind])
    assert x.shape == (3, extractor.dim) and x.dtype == np.float32 and np.isfinite(x).all()
    assert not np.allclose(x[0], x[1])  # different inputs, different features
    np.testing.assert_allclose(extractor.encode(inputs[kind][:1]), x[:1], rtol=1e-5, atol=1e-6)
    identity = extractor.identity()
    assert identity["kind"] == kind and len(identity["weights"]) == 64


def _to_hub_cache(folder, repo_id, hub):
    """`folder` laid out as a Hugging Face cache snapshot of `repo_id` (what `hf download` leaves)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_names_resolve_in_the_hub_cache_and_missing_models_are_one_line(tiny, inputs, tmp_path, monkeypatch):
    _to_hub_cache(tiny["st"], "sentence-transformers/tiny-st", tmp_path / "hub")
    assert features.for_input("st:tiny-st", "text").encode(inputs["text"]).shape == (3, 8)
    for spec, kind, fetch in [("st:all-mpnet-base-v2", "text", "hf download sentence-transformers/all-mpnet-base-v2"),
                              ("hf:MIT/ast-finetuned-audioset-10-10-0.4593", "audio",
                               "hf download MIT/ast-finetuned-audioset-10-10-0.4593")]:
        with pytest.raises(BmmalError) as error:
            _ = features.for_input(spec, kind).dim
        message = str(error.value)
        assert spec in message and fetch in message and "--allow-download" in message and "\n" not in message
    monkeypatch.setenv(named.ALLOW_DOWNLOAD_ENV, "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # respected even with --allow-download: nothing is fetched
    with pytest.raises(BmmalError, match="HF_HUB_OFFLINE is set"):
        _ = features.for_input("st:all-mpnet-base-v2", "text").dim


def test_a_paired_model_is_loaded_once_for_its_image_and_text_columns(tiny, inputs, monkeypatch, capsys):
    import transformers

    capsys.readouterr()
    loads = []
    real = transformers.AutoModel.from_pretrained
    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", lambda *a, **k: loads.append(a) or real(*a, **k))
    spec = f"hf:{tiny['clip']}"
    image, text = features.for_input(spec, "image"), features.for_input(spec, "text")
    assert image.encode(inputs["image"]).shape == text.encode(inputs["text"]).shape == (3, 6)  # one space
    assert len(loads) == 1
    assert capsys.readouterr().err == ""  # no weight-loading bar: nobody asked for progress
    with pytest.raises(BmmalError, match="reads image and text, not audio"):
        _ = features.for_input(spec, "audio").dim


def test_cache_key_holds_model_identity_and_weights_hash(tiny, tmp_path):
    other = _sentence_transformer(tmp_path / "st-other", seed=1)  # same architecture, other weights
    cache = features.FeatureCache(tmp_path / "cache")
    a, b = features.for_input(f"st:{tiny['st']}", "text"), features.for_input(f"st:{other}", "text")
    assert a.identity()["weights"] != b.identity()["weights"]
    assert cache.entry("d", "m", a, "x") != cache.entry("d", "m", b, "x")
    copy = tmp_path / "st-copy"
    shutil.copytree(tiny["st"], copy)  # the same weights elsewhere: the same hash
    assert features.for_input(f"st:{copy}", "text").identity()["weights"] == a.identity()["weights"]


def test_manifest_columns_with_named_extractors(tiny, inputs, tmp_path):
    from bmmal.datasets.manifest import load_manifest

    rows = [{"id": f"s{i}", "label": "ab"[i % 2], "photo": str(inputs["image"][i % 3]), "caption": f"the cat {i}"}
            for i in range(6)]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    data = load_manifest(manifest, extractors={"photo": f"hf:{tiny['clip']}", "caption": f"st:{tiny['st']}"},
                         cache_dir=tmp_path / "cache")
    assert data.input_shapes() == {"photo": (6,), "caption": (8,)}
    with pytest.raises(BmmalError, match="reads audio, not text"):
        load_manifest(manifest, extractors={"caption": f"hf:{tiny['ast']}"}, cache_dir=tmp_path / "cache")


@pytest.mark.skipif(bool(importlib.util.find_spec("timm")) or bool(importlib.util.find_spec("open_clip")),
                    reason="timm / open_clip installed")
@pytest.mark.parametrize("spec, package", [("timm:convnext_tiny", "timm"), ("open_clip:ViT-B-32", "open_clip")])
def test_timm_and_open_clip_without_the_package_say_what_to_install(spec, package):
    assert named.is_named(spec)
    with pytest.raises(BmmalError, match=f"needs the Python package '{package}'"):
        _ = features.for_input(spec, "image").dim


def test_allow_download_flag_gives_the_permission(monkeypatch):
    from bmmal.cli import main

    monkeypatch.setenv(named.ALLOW_DOWNLOAD_ENV, "0")  # restored after the test
    assert not named.downloads_allowed()
    assert main(["datasets"]) == 0 and not named.downloads_allowed()
    assert main(["--allow-download", "datasets"]) == 0 and named.downloads_allowed()
