"""The paper datasets read from disk (Food-101, Kinetics-Sounds, VGGSound): preprocessing, layouts, missing
and corrupt files, training-time augmentation, and one active-learning round with each paper config."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bmmal import datasets
from bmmal.config import TrainConfig, load_yaml, parse_config
from bmmal.data import ArrayDataset
from bmmal.datasets import media
from bmmal.datasets.fixtures import write_audiovisual, write_food101
from bmmal.errors import BmmalError
from bmmal.loop import ActiveLearner
from bmmal.models.training import TrainingLoop, build_model, lr_factor

soundfile = pytest.importorskip("soundfile")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
KS_CLASSES = ["bowling", "laughing"]


# ---- preprocessing against hand-computed values ------------------------------------------------
def test_ingredient_words_as_the_reference_preprocessing():
    # the reference: characters <>/\\+=-_[]{}'";:.,()*&^%$#@!~`| become spaces, lower case, NLTK word tokens;
    # no token "ingredients": dropped; otherwise the 100 tokens after the first occurrence of the last
    # token containing "ingredients"
    assert media.ingredient_words("no recipe section here, preingredients x") is None  # zero markers
    assert media.ingredient_words("Best pie! Ingredients: 2 cups flour, 1 egg.") == ["2", "cups", "flour", "1", "egg"]
    two = "Pie.\nIngredients: flour; salt.\nMethod: mix.\nIngredients: sugar?"  # two markers: the first one
    assert media.ingredient_words(two) == ["flour", "salt", "method", "mix", "ingredients", "sugar", "?"]
    # "More-ingredients" becomes "more ingredients": two markers again, the text after the first
    assert media.ingredient_words("Ingredients: a b\nMore-ingredients: c") == ["a", "b", "more", "ingredients", "c"]
    # the last containing token is "ingredientsx": the section starts after its first occurrence
    assert media.ingredient_words("x ingredients a ingredientsx b ingredientsx c") == ["b", "ingredientsx", "c"]
    assert media.ingredient_words("Ingredients: I cannot") == ["i", "can", "not"]  # Treebank tokens
    assert media.ingredient_words("Ingredients: a b c d", max_words=2) == ["a", "b"]


def test_food101_scan_text_equals_the_reference_and_skips_images_without_text(tmp_path, caplog):
    import logging

    from bmmal.datasets.food101 import read_split

    root = write_food101(tmp_path, ["baklava"], {"train": 4, "test": 1})
    texts = root / "texts_txt" / "baklava"
    (texts / "baklava_train0.txt").write_text("<p>A page without a recipe.</p>")
    (texts / "baklava_train1.txt").write_text("Baklava!\nIngredients: 1 cup walnuts, honey.\nEnjoy")
    (texts / "baklava_train2.txt").write_text("Ingredients: filo, butter.\nSyrup ingredients: sugar\nINGREDIENTS: x")
    (texts / "baklava_train3.txt").unlink()
    with caplog.at_level(logging.WARNING, logger="bmmal"):
        records, meta = read_split(root, "train", on_missing="error")
    assert meta == {"skipped_missing": 0, "skipped_no_text": 1, "dropped_no_ingredients": 1}
    assert "skipped 1 images without a text file" in caplog.text
    assert {r["id"]: r["words"] for r in records} == {
        "baklava_baklava_train1.jpg": ["1", "cup", "walnuts", "honey", "enjoy"],
        "baklava_baklava_train2.jpg": ["filo", "butter", "syrup", "ingredients", "sugar", "ingredients", "x"]}


def test_frame_indices():
    assert media.frame_indices(10, 5, None).tolist() == [1, 3, 5, 7, 9]
    a = media.frame_indices(10, 5, np.random.default_rng(3))
    assert len(set(a.tolist())) == 5 and a.tolist() == sorted(a.tolist()) and 0 <= a.min() and a.max() < 10
    assert np.array_equal(a, media.frame_indices(10, 5, np.random.default_rng(3)))
    with pytest.raises(BmmalError):
        media.frame_indices(4, 5, None)


def test_video_augmentation_per_frame_or_per_clip(tmp_path):
    from PIL import Image

    ramp = np.add.outer(np.arange(128), 2 * np.arange(171)) % 256
    Image.fromarray(np.stack([ramp] * 3, -1).astype(np.uint8)).save(tmp_path / "f.png")
    frames = [tmp_path / "f.png"] * 10  # ten identical frames: any difference comes from the augmentation

    def clip(seed, augmentation="per_frame"):
        return media.video_clip(frames, 5, np.random.default_rng(seed), augmentation=augmentation)

    per_frame = clip(0)
    assert per_frame.shape == (3, 5, 112, 112)
    assert len({per_frame[:, t].sum().item() for t in range(5)}) > 1  # crops drawn per frame differ
    assert torch.equal(per_frame, clip(0)) and not torch.equal(per_frame, clip(1))  # seeded
    per_clip = clip(0, "per_clip")
    assert all(torch.equal(per_clip[:, t], per_clip[:, 0]) for t in range(5))
    centre = media.video_clip(frames, 5, None)
    assert all(torch.equal(centre[:, t], centre[:, 0]) for t in range(5))
    with pytest.raises(BmmalError, match="video augmentation must be one of per_frame, per_clip"):
        clip(0, "per_video")


def test_audio_window_takes_the_middle_five_seconds_at_test_time():
    sr = 100
    wave = np.arange(12 * sr, dtype=np.float32) / 10_000  # a ramp, longer than 10 s: cut to 10 s first
    mid = media.audio_window(wave, sr, None)
    assert np.array_equal(mid, wave[250:750])
    short = media.audio_window(np.full(3 * sr, 2.0, np.float32), sr, None)  # padded with zeros, clipped to 1
    assert short.shape == (500,) and np.all(short[:50] == 1.0) and np.all(short[50:] == 0.0)
    rnd = media.audio_window(wave, sr, np.random.default_rng(0))
    start = round(rnd[0] * 10_000)
    assert 0 <= start <= 500 and np.allclose(rnd, wave[start:start + 500])


def test_log_spectrogram_shape_and_one_frame_by_hand():
    sr, n_fft, hop = 16000, 512, 159
    t = np.arange(5 * sr) / sr
    noise = np.random.default_rng(0).normal(0, 0.05, size=t.shape)  # energy in every bin: logs comparable
    wave = (0.5 * np.sin(2 * np.pi * 1000 * t) + noise).astype(np.float32)
    spec = media.log_spectrogram(wave, n_fft, hop)
    assert spec.shape == (257, 504)  # 1 + 80000 // 159 frames
    assert spec[:, 100].argmax() == round(1000 * n_fft / sr)  # bin 32
    # frame 100 by hand: centred at sample 100 * hop, periodic Hann window, real DFT
    centre = 100 * hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frame = wave[centre - n_fft // 2:centre + n_fft // 2].astype(np.float64) * window
    expected = np.log(np.abs(np.fft.rfft(frame)) + 1e-7)
    assert np.allclose(spec[:, 100].numpy(), expected, atol=1e-3)


def test_read_audio_resamples_and_mixes_down(tmp_path):
    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], 1).astype(np.float32) * 0.5
    soundfile.write(str(tmp_path / "a.wav"), stereo, 22050, subtype="FLOAT")
    wave = media.read_audio(tmp_path / "a.wav", 16000)
    assert wave.shape == (16000,) and wave.dtype == np.float32
    assert abs(np.abs(wave[1000:15000]).max() - 0.25) < 0.01  # channel mean of 0.5 and 0
    (tmp_path / "bad.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(BmmalError, match=r"cannot decode audio .*bad\.wav"):
        media.read_audio(tmp_path / "bad.wav")


def test_image_crop_and_normalisation_by_hand():
    from PIL import Image

    assert media.crop_box(256, 300, 224, None) == (16, 38)
    img = Image.fromarray(np.full((4, 4, 3), [255, 0, 128], np.uint8))
    x = media.to_tensor(img, media.IMAGENET_MEAN, media.IMAGENET_STD)
    assert x.shape == (3, 4, 4)
    assert torch.allclose(x[:, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224,
                                                    (128 / 255 - 0.406) / 0.225]))
    assert media.resize_shorter(Image.new("RGB", (300, 200)), 256).size == (384, 256)


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ks_root(tmp_path_factory):
    return write_audiovisual(tmp_path_factory.mktemp("ks"), "kinetics_sounds", KS_CLASSES, {"train": 6, "test": 2},
                             seconds=6.0)


@pytest.fixture(scope="module")
def vgg_root(tmp_path_factory):
    # 22.05 kHz audio: the loader resamples to 16 kHz
    return write_audiovisual(tmp_path_factory.mktemp("vgg") / "VGGSound", "vggsound", ["dog barking", "thunder"],
                             {"train": 6, "test": 2}, seconds=4.0, sample_rate=22050)


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "flour", "salt", "butter", "sugar", "egg", "baklava",
             "apple", "pie"]
    transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(path)
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=128)
    transformers.BertModel(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def food_root(tmp_path_factory):
    root = write_food101(tmp_path_factory.mktemp("food"), ["apple_pie", "baklava"], {"train": 6, "test": 2})
    (root / "texts_txt" / "baklava" / "baklava_train5.txt").write_text("a page without a recipe section")
    return root


# ---- loaders -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,root_fixture,classes", [("kinetics_sounds", "ks_root", KS_CLASSES),
                                                       ("vggsound", "vgg_root", ["dog barking", "thunder"])])
def test_audiovisual_loaders(request, name, root_fixture, classes):
    train, test = datasets.load(name, root=request.getfixturevalue(root_fixture), classes=classes)
    assert (len(train), len(test)) == (12, 4)
    assert train.classes == tuple(classes) and train.modalities == ("video", "audio")
    assert np.bincount(train.labels).tolist() == [6, 6]
    assert train.input_shapes() == {"video": (3, 5, 112, 112), "audio": (1, 257, 504)}
    rows = np.array([0, 7])
    evals = train.batch(rows)
    assert evals["video"].shape == (2, 3, 5, 112, 112) and evals["audio"].shape == (2, 1, 257, 504)
    assert all(torch.equal(evals[m], train.batch(rows)[m]) for m in evals)  # no augmentation
    aug = train.train_batch(rows, seed=4)
    assert all(torch.equal(aug[m], train.train_batch(rows, seed=4)[m]) for m in aug)  # seeded
    assert not torch.equal(aug["video"], evals["video"]) and not torch.equal(aug["audio"], evals["audio"])
    single = train.subset(np.array([7])).batch(np.array([0]))
    assert torch.equal(single["audio"][0], evals["audio"][1])
    video_only, _ = datasets.load(name, modalities=("audio",), root=request.getfixturevalue(root_fixture))
    assert video_only.modalities == ("audio",)


def test_vggsound_classes_in_the_reference_order(vgg_root):
    from bmmal.datasets.vggsound import CLASSES

    assert len(CLASSES) == len(set(CLASSES)) == 309
    assert CLASSES[:3] == ("ice cream truck ice cream van", "people babbling", "mouse clicking")
    assert CLASSES[-1] == "playing tuning fork"
    train, test = datasets.load("vggsound", root=vgg_root)
    assert train.classes == test.classes == CLASSES
    expected = {CLASSES.index("dog barking"), CLASSES.index("thunder")}
    assert set(train.labels.tolist()) == set(test.labels.tolist()) == expected == {86, 120}
    with pytest.raises(BmmalError, match="label 'thunder' is not one of the classes"):
        datasets.load("vggsound", root=vgg_root, classes=["dog barking"])


def test_kinetics_sounds_reference_split_file_with_foreign_paths(tmp_path, ks_root):
    import shutil

    root = tmp_path / "ks"
    shutil.copytree(ks_root, root)
    clip = "train-001-0002"
    entries = {clip: {"label": "laughing", "audio_path": f"/workspace/Datasets/ks/train/audio/laughing/{clip}.wav",
                      "video_path": f"/workspace/Datasets/ks/train/video/laughing/{clip}"}}
    (root / "train.json").write_text(json.dumps(entries))
    train, test = datasets.load("kinetics_sounds", root=root, classes=KS_CLASSES)
    assert train.ids.tolist() == [clip] and train.labels.tolist() == [1] and len(test) == 4
    assert train.sources["audio"][0] == str(root / "train" / "audio" / "laughing" / f"{clip}.wav")


def test_missing_frames_error_or_skip(tmp_path, ks_root):
    import shutil

    root = tmp_path / "ks"
    shutil.copytree(ks_root, root)
    clip_dir = root / "train" / "video" / "bowling" / "train-000-0003"
    (clip_dir / "frame_00009.jpg").unlink()
    with pytest.raises(BmmalError, match=r"train-000-0003 has 9 frame_\*\.jpg files, needs 10.*on_missing: skip"):
        datasets.load("kinetics_sounds", root=root)
    train, _ = datasets.load("kinetics_sounds", root=root, on_missing="skip")
    assert len(train) == 11 and "train-000-0003" not in train.ids and train.meta["skipped_missing"] == 1
    (root / "test" / "audio" / "laughing" / "test-001-0000.wav").unlink()
    (root / "test" / "audio" / "laughing" / "test-001-0000.txt").write_text("")
    _, test = datasets.load("kinetics_sounds", root=root, on_missing="skip")
    assert len(test) == 3


def test_corrupt_file_named_on_decode_and_verify(tmp_path, vgg_root):
    import shutil

    root = tmp_path / "VGGSound"
    shutil.copytree(vgg_root, root)
    bad = root / "frames" / "train" / "thunder" / "train-001-0001" / "frame_00003.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    train, _ = datasets.load("vggsound", root=root)
    row = int(np.flatnonzero(train.ids == "train-001-0001")[0])
    with pytest.raises(BmmalError, match=r"cannot decode image .*frame_00003\.jpg"):
        train.batch(np.array([row]))
    with pytest.raises(BmmalError, match="frame_00003.jpg"):
        datasets.load("vggsound", root=root, verify=True)
    train, _ = datasets.load("vggsound", root=root, verify=True, on_missing="skip")
    assert len(train) == 11 and train.meta["skipped_corrupt"] == 1


def test_loader_option_errors(tmp_path):
    with pytest.raises(BmmalError, match="set dataset option root"):
        datasets.load("vggsound")
    with pytest.raises(BmmalError, match="data folder not found"):
        datasets.load("kinetics_sounds", root=tmp_path / "nothing")
    with pytest.raises(BmmalError, match="on_missing must be one of"):
        datasets.load("kinetics_sounds", root=tmp_path, on_missing="ignore")
    with pytest.raises(BmmalError, match="modalities must be distinct names from video, audio"):
        datasets.load("vggsound", modalities=("image",), root=tmp_path)


def test_food101_scan(food_root, bert_dir):
    train, test = datasets.load("food101", root=food_root, tokenizer=str(bert_dir), max_tokens=12)
    assert train.modalities == ("text", "image") and train.classes == ("apple_pie", "baklava")
    # the text without an ingredients section is dropped, as the reference does
    assert (len(train), len(test)) == (11, 4) and train.meta["dropped_no_ingredients"] == 1
    assert "baklava_baklava_train5.jpg" not in train.ids and "apple_pie_apple_pie_train0.jpg" in train.ids
    tokens = train.batch(np.array([0]))["text"][0]
    assert tokens.shape == (2, 12) and tokens[0, :3].tolist() == [2, 11, 12]  # [CLS] apple pie ...
    img = train.batch(np.array([0, 1]))["image"]
    assert img.shape == (2, 3, 224, 224)
    assert not torch.equal(train.train_batch(np.array([0, 1]), 0)["image"], img)


def test_food101_reference_split_file_and_missing_image(tmp_path, food_root, bert_dir):
    import shutil

    root = tmp_path / "UPMC_Food101"
    shutil.copytree(food_root, root)
    entries = [{"id": "baklava_baklava_train1.jpg", "label": "baklava", "text_tokens": ["flour", "egg"],
                "img_path": "/workspace/Dataset/UPMC_Food101/images/train/baklava/baklava_train1.jpg"},
               {"id": "x", "label": "apple_pie", "text_tokens": ["salt"],
                "img_path": "/elsewhere/images/train/apple_pie/gone.jpg"}]
    (root / "train.json").write_text(json.dumps(entries))
    with pytest.raises(BmmalError, match=r"missing file .*gone\.jpg"):
        datasets.load("food101", root=root, tokenizer=str(bert_dir))
    # classes come from the training split: the scanned test split then holds an unknown class
    with pytest.raises(BmmalError, match="food101 test: label 'apple_pie' is not one of the training classes"):
        datasets.load("food101", root=root, tokenizer=str(bert_dir), on_missing="skip")
    train, test = datasets.load("food101", root=root, tokenizer=str(bert_dir), on_missing="skip",
                                classes=["apple_pie", "baklava"])
    assert train.ids.tolist() == ["baklava_baklava_train1.jpg"] and train.labels.tolist() == [1] and len(test) == 4
    assert train.meta["skipped_missing"] == 1


# ---- trainer on file-backed data -----------------------------------------------------------------
def test_lr_schedule_warms_up_per_optimiser_step():
    config = TrainConfig(warmup_epochs=2, lr_milestones=(3, 4), lr_gamma=0.1)
    # 2 steps per epoch: warm-up over 4 steps, (s + 1) / 4, then x0.1 from epoch 3 (step 6), x0.01 from step 8
    factors = [round(lr_factor(s, 2, config), 6) for s in range(10)]
    assert factors == [0.25, 0.5, 0.75, 1, 1, 1, 0.1, 0.1, 0.01, 0.01]
    assert lr_factor(5, 3, TrainConfig()) == 1.0


def test_training_steps_the_warm_up_after_every_optimiser_step(monkeypatch):
    from bmmal.config import ModelConfig

    x = np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32)
    data = ArrayDataset({"a": x, "b": x}, np.arange(12) % 2, ("p", "q"))
    model = build_model(ModelConfig(encoder="identity"), data, seed=0)
    optimizers, seen = [], []
    real_adam = torch.optim.Adam
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: optimizers.append(real_adam(*a, **k)) or optimizers[0])
    model.register_forward_pre_hook(lambda *_: seen.append(optimizers[0].param_groups[0]["lr"]))
    config = TrainConfig(epochs=3, batch_size=4, optimizer="adam", lr=0.4, warmup_epochs=2, device="cpu")
    TrainingLoop(config).fit(model, data, np.arange(12), data.labels, seed=0)
    # 3 steps per epoch: the learning rate grows at every step of the first two epochs
    assert np.allclose(seen, [0.4 * (s + 1) / 6 for s in range(6)] + [0.4] * 3)


def test_reference_head_initialisation():
    from bmmal.config import ModelConfig

    x = np.zeros((4, 300), np.float32)
    data = ArrayDataset({"a": x, "b": x[:, :100]}, [0, 1, 2, 3], ("p", "q", "r", "s"))
    model = build_model(ModelConfig(encoder="identity", head_init="xavier"), data, seed=0)
    heads = {"a": model.unimodal_heads["a"], "b": model.unimodal_heads["b"], "fused": model.fused_head}
    for name, head in heads.items():
        fan_out, fan_in = head.weight.shape
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert torch.all(head.bias == 0.01), name
        assert head.weight.abs().max() <= bound and head.weight.abs().max() > 0.95 * bound, name
        assert abs(head.weight.std().item() - bound / 3 ** 0.5) < 0.1 * bound, name  # uniform on [-bound, bound]
    default = build_model(ModelConfig(encoder="identity"), data, seed=0)
    assert not torch.all(default.fused_head.bias == 0.01)
    with pytest.raises(BmmalError, match="unknown head_init"):
        from bmmal.models.classifier import MultimodalClassifier

        MultimodalClassifier(dict(model.encoders), 4, head_init="zeros")


def test_file_backed_training_is_deterministic_with_workers(ks_root):
    from bmmal.config import ModelConfig

    train, _ = datasets.load("kinetics_sounds", root=ks_root)
    model_config = ModelConfig(encoder={"video": "r2plus1d", "audio": "resnet"},
                               encoder_options={"video": {"width": 4, "pretrained": False},
                                                "audio": {"width": 4, "pretrained": False}})
    weights = []
    for workers in (0, 2):
        model = build_model(model_config, train, seed=0)
        TrainingLoop(TrainConfig(epochs=1, batch_size=4, num_workers=workers, device="cpu", warmup_epochs=2)).fit(
            model, train, np.arange(8), train.labels[:8], seed=3)
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


# ---- one active-learning round with each paper config ---------------------------------------------
def tiny(config_name: str, root: Path, **dataset_options) -> dict:
    """The paper config with small encoders, 1 epoch and budgets 4 + 4."""
    raw = load_yaml(CONFIGS / f"{config_name}.yaml")
    raw["dataset"]["options"].update(root=str(root), **dataset_options)
    raw.update(initial_budget=4, budget=4, rounds=1, eval_batch_size=8)
    raw["train"].update(epochs=1, batch_size=4, num_workers=0, device="cpu")
    for options in raw["model"].get("encoder_options", {}).values():
        if "path" not in options:  # the vision encoders: tiny and random
            options.update(width=4, pretrained=False)
            options.pop("weights", None)
    return raw


def run_round(raw: dict, tmp_path: Path):
    config = parse_config(raw)
    history = ActiveLearner(config, tmp_path / "run").run()
    assert [row["round"] for row in history] == [0, 1]
    assert [row["n_labeled"] for row in history] == [4, 8]
    return history


def test_kinetics_sounds_config_round(tmp_path, ks_root):
    history = run_round(tiny("kinetics_sounds", ks_root), tmp_path)
    assert 0 <= history[1]["accuracy_micro"] <= 1


def test_vggsound_config_round(tmp_path, vgg_root):
    raw = tiny("vggsound", vgg_root)
    run_round(raw, tmp_path)


def test_food101_config_round(tmp_path, food_root, bert_dir):
    raw = tiny("food101", food_root, tokenizer=str(bert_dir), max_tokens=12)
    raw["model"]["encoder_options"]["text"]["path"] = str(bert_dir)
    run_round(raw, tmp_path)


def test_food101_frozen_config_round(tmp_path, food_root, bert_dir):
    raw = tiny("food101_frozen", food_root, tokenizer=str(bert_dir), max_tokens=12)
    encoders = raw["dataset"]["options"]["frozen"]["encoders"]
    encoders["text"]["path"] = str(bert_dir)
    encoders["image"] = {"kind": "resnet", "depth": 18, "width": 4, "pretrained": False}
    raw["dataset"]["options"]["frozen"]["cache_dir"] = str(tmp_path / "cache")
    options = {k: v for k, v in raw["dataset"]["options"].items() if k != "root"}
    train, _ = datasets.load("food101", root=food_root, **options)
    assert isinstance(train, ArrayDataset) and train.input_shapes() == {"text": (16,), "image": (32,)}
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*.npz"))
    assert len(cached) == 4  # train and test, two modalities
    again, _ = datasets.load("food101", root=food_root, **options)
    assert np.array_equal(again.features["image"], train.features["image"])
    run_round(raw, tmp_path)


def test_paper_configs_validate_and_hold_the_protocol():
    budgets = {"food101": (1000, 1000), "kinetics_sounds": (1000, 1000), "vggsound": (2000, 2000)}
    for name, (initial, per_round) in budgets.items():
        config = parse_config(load_yaml(CONFIGS / f"{name}.yaml"))
        assert (config.initial_budget, config.budget, config.rounds) == (initial, per_round, 6)
        assert config.train.batch_size == 32
        assert config.train.fused_loss_weight == config.train.unimodal_loss_weight  # (1/3, 1/3, 1/3)
    ks = parse_config(load_yaml(CONFIGS / "kinetics_sounds.yaml"))
    assert len(ks.dataset.options["classes"]) == 31 and ks.train.encoder_lr == {"video": 2e-3, "audio": 1e-3}
    assert (ks.train.epochs, ks.train.warmup_epochs, ks.train.lr_milestones) == (45, 10, (20, 30, 40))
    food = parse_config(load_yaml(CONFIGS / "food101.yaml"))
    assert food.train.encoder_lr == {"text": 1e-5, "image": 1e-4} and food.train.lr_milestones == (10,)
    for name in ("food101", "food101_frozen", "kinetics_sounds", "vggsound"):
        config = parse_config(load_yaml(CONFIGS / f"{name}.yaml"))
        assert config.model.head_init == "xavier" and config.train.amp == "off", name  # fp32, reference heads
    for name in ("kinetics_sounds", "vggsound"):
        assert parse_config(load_yaml(CONFIGS / f"{name}.yaml")).dataset.options["video_augmentation"] == "per_frame"
    with pytest.raises(BmmalError, match="set dataset option root"):
        datasets.load("food101")


def test_mixed_precision_only_on_cuda():
    from bmmal.models.training import amp_dtype

    assert amp_dtype(TrainConfig(amp="bf16"), torch.device("cpu")) is None
    assert amp_dtype(TrainConfig(amp="bf16"), torch.device("cuda")) is torch.bfloat16
    assert amp_dtype(TrainConfig(amp="fp16"), torch.device("cuda")) is torch.float16
    assert amp_dtype(TrainConfig(), torch.device("cuda")) is None
