"""End-to-end encoders: shapes, architecture sizes, local pretrained weights, and the errors around them."""

import logging

import pytest
import torch

from bmmal.errors import BmmalError
from bmmal.models.encoders import build_encoder
from bmmal.models.r2plus1d import R2Plus1D18
from bmmal.models.resnet import ResNet


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("depth,width,in_channels,out_dim", [(18, 8, 1, 64), (50, 8, 3, 256), (101, 4, 3, 128)])
def test_resnet_output_shape(depth, width, in_channels, out_dim):
    enc = build_encoder("resnet", (in_channels, 40, 52), depth=depth, width=width, pretrained=False)
    assert enc.out_dim == out_dim
    assert enc(torch.randn(2, in_channels, 40, 52)).shape == (2, out_dim)


def test_r2plus1d_output_shape():
    enc = build_encoder("r2plus1d", (3, 5, 32, 32), width=8, pretrained=False)
    assert enc.out_dim == 64
    assert enc(torch.randn(2, 3, 5, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize("model,expected", [
    # torchvision's published parameter counts without the classification layer fc
    (lambda: ResNet(18), 11_689_512 - (512 * 1000 + 1000)),
    (lambda: ResNet(50), 25_557_032 - (2048 * 1000 + 1000)),
    (lambda: ResNet(101), 44_549_160 - (2048 * 1000 + 1000)),
    (lambda: R2Plus1D18(), 31_505_325 - (512 * 400 + 400)),
])
def test_full_size_parameter_counts_match_torchvision(model, expected):
    assert n_params(model()) == expected


def test_state_dict_keys_follow_torchvision_names():
    keys = set(R2Plus1D18(width=8).state_dict())
    assert {"stem.0.weight", "stem.4.running_mean", "layer1.0.conv1.0.0.weight", "layer1.0.conv1.0.3.weight",
            "layer2.0.downsample.0.weight", "layer4.1.conv2.1.weight"} <= keys
    keys = set(ResNet(50, width=8).state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv3.weight", "layer3.5.bn2.weight",
            "layer4.0.downsample.1.weight"} <= keys


def _equal_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kind,shape", [("resnet", (3, 32, 32)), ("r2plus1d", (3, 4, 32, 32))])
def test_pretrained_weights_load_from_a_local_state_dict(tmp_path, kind, shape):
    torch.manual_seed(1)
    source = build_encoder(kind, shape, width=8, pretrained=False)
    # a checkpoint as torchvision or DataParallel would save it: classifier included, "module." prefix
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(10, source.out_dim)
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    torch.manual_seed(2)
    loaded = build_encoder(kind, shape, width=8, weights=str(tmp_path / "w.pth"))
    assert _equal_state(source, loaded)
    torch.manual_seed(2)
    assert not _equal_state(source, build_encoder(kind, shape, width=8, pretrained=False))


def test_three_channel_checkpoint_fits_a_spectrogram_stem(tmp_path):
    rgb = ResNet(18, in_channels=3, width=8)
    torch.save(rgb.state_dict(), tmp_path / "rgb.pth")
    mono = build_encoder("resnet", (1, 32, 32), width=8, weights=str(tmp_path / "rgb.pth"))
    assert torch.allclose(mono.conv1.weight, rgb.conv1.weight.sum(1, keepdim=True))
    assert torch.equal(mono.layer2[0].conv1.weight, rgb.layer2[0].conv1.weight)


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(BmmalError, match="pretrained but no weights file given.*pretrained: false"):
        build_encoder("resnet", (3, 32, 32), width=8)
    with pytest.raises(BmmalError, match=r"weights file not found: .*nothere\.pth"):
        build_encoder("r2plus1d", (3, 4, 32, 32), width=8, weights=str(tmp_path / "nothere.pth"))


def test_random_init_only_when_asked(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="bmmal"):
        enc = build_encoder("resnet", (3, 32, 32), width=8, weights=str(tmp_path / "x.pth"), allow_random_init=True)
    assert enc.out_dim == 64 and "random weights" in caplog.text


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    torch.save(ResNet(18, width=8).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(BmmalError, match="does not fit this encoder"):
        build_encoder("resnet", (3, 32, 32), depth=50, width=8, weights=str(tmp_path / "r18.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BmmalError, match="cannot read weights file"):
        build_encoder("resnet", (3, 32, 32), width=8, weights=str(tmp_path / "junk.pth"))


def test_wrong_input_rank_is_an_error():
    with pytest.raises(BmmalError, match="r2plus1d expects clips"):
        build_encoder("r2plus1d", (3, 32, 32), pretrained=False)


# ---- text (transformers) ------------------------------------------------------------------------
transformers = pytest.importorskip("transformers")

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "flour", "salt", "butter", "sugar", "egg", "apple_pie",
         "baklava", "apple", "pie"]


def tiny_bert(path, seed=0):
    """A 1-layer BERT and its tokenizer saved in a local folder, as a user's downloaded model would be."""
    transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(VOCAB)}).save_pretrained(path)
    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    model = transformers.BertModel(config)
    model.save_pretrained(path)
    return model


def test_bert_tokenize_and_encode(tmp_path):
    from bmmal.models.text import tokenize

    saved = tiny_bert(tmp_path)
    x = tokenize(["apple pie flour", "salt"], str(tmp_path), max_tokens=8)
    assert x.shape == (2, 2, 8)
    assert x[0, 0].tolist() == [2, 12, 13, 5, 3, 0, 0, 0]  # [CLS] apple pie flour [SEP] padding
    assert x[1, 1].tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    enc = build_encoder("bert", (2, 8), path=str(tmp_path))
    assert enc.out_dim == 16
    assert _equal_state(saved, enc.model)
    out = enc.eval()(torch.as_tensor(x))
    expected = saved.eval()(input_ids=torch.as_tensor(x[:, 0]), attention_mask=torch.as_tensor(x[:, 1]))
    assert torch.allclose(out, expected.last_hidden_state[:, 0])


def test_bert_missing_locally_is_a_clear_error(tmp_path):
    with pytest.raises(BmmalError, match="cannot load the text model .* from local files"):
        build_encoder("bert", (2, 8), path=str(tmp_path / "no-model"))
