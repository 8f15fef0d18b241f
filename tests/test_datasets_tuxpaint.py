"""Tux Paint stamps: image + text + speech. Most tests run only where Debian's tuxpaint-stamps-default
(218 MB) is installed; the parsing tests use a small stamp tree they write themselves."""

import numpy as np
import pytest

from bmmal import datasets
from bmmal.datasets import tuxpaint
from bmmal.errors import BmmalError

installed = tuxpaint.ROOT.is_dir()
needs_debian = pytest.mark.skipif(not installed, reason=f"needs the Debian package: {tuxpaint.INSTALL}")


def test_missing_package_names_the_install_command(tmp_path):
    with pytest.raises(BmmalError, match=r"install it with: apt-get install -y --no-install-recommends "
                                         r"tuxpaint-stamps-default$"):
        datasets.load("tuxpaint", root=tmp_path / "stamps")


def test_finds_stamps_and_keeps_categories_with_enough_pictures(tmp_path, monkeypatch):
    def stamp(rel, picture=".png", speech=True, text="A thing.\nfr.utf8=Une chose.\n"):
        base = tmp_path / rel
        base.parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".txt").write_text(text)
        if picture:
            base.with_suffix(picture).write_bytes(b"picture")
        if speech:
            (base.parent / f"{base.name}_desc_fr.ogg").write_bytes(b"speech")

    stamp("animals/cats/cat")
    stamp("animals/dog", picture=".svg")
    stamp("animals/fish", speech=False)  # counts towards the category, but has no speech
    stamp("animals/ghost", picture=None)  # no picture: not a stamp
    stamp("food/pie")
    stamps = tuxpaint.find_stamps(tmp_path, "fr")
    assert [s.id for s in stamps] == ["animals/cats/cat", "animals/dog", "animals/fish", "food/pie"]
    assert stamps[1].image.suffix == ".svg" and stamps[0].text == "A thing."
    assert stamps[2].speech is None and stamps[0].speech.name == "cat_desc_fr.ogg"

    monkeypatch.setattr(tuxpaint, "MIN_PER_CLASS", 3)  # animals has 3 pictures, food 1
    seen = {}

    class Fake:
        def __init__(self, kind):
            self.name, self.kind, self.dim = f"fake-{kind}", kind, 1

        def identity(self):
            return {"name": self.name}

        def encode(self, items, description=None):
            seen[self.kind] = list(items)
            return np.arange(len(items), dtype=np.float32)[:, None]

    monkeypatch.setattr(tuxpaint.F, "get", lambda name, **o: Fake({"efficientnet-lite0": "image", "mfcc": "audio",
                                                                     "all-minilm-l6-v2": "text"}[name]))
    data = tuxpaint.build_tuxpaint(cache_dir=tmp_path / "cache", root=tmp_path)
    assert data.classes == ("animals",) and data.ids.tolist() == ["animals/cats/cat", "animals/dog"]
    assert seen["text"] == ["A thing.", "A thing."]
    assert [p.name for p in seen["audio"]] == ["cat_desc_fr.ogg", "dog_desc_fr.ogg"]


@needs_debian
def test_stamp_inventory():
    stamps = tuxpaint.find_stamps()
    with_speech = [s for s in stamps if s.speech is not None]
    assert len(stamps) == 950 and len(with_speech) == 925


@needs_debian
@pytest.mark.slow
def test_tuxpaint_subset_end_to_end(tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("librosa")
    pytest.importorskip("cairosvg")
    train, test = datasets.load("tuxpaint", per_class=4, seed=0, cache_dir=tmp_path)
    assert train.classes == ("animals", "clothes", "food", "household", "people", "plants", "seasonal", "space",
                             "symbols", "town", "vehicles")
    assert len(train) + len(test) == 44
    assert train.input_shapes() == {"image": (1280,), "text": (384,), "audio": (61,)}
    for split in (train, test):
        split.check_finite()


@needs_debian
def test_image_encoder_recognises_stamps():
    """ImageNet classes of the pretrained head on Tux Paint art: the weights and preprocessing are right."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    from bmmal import features as F
    from bmmal.features.image import load_image, to_input

    model = F.get("efficientnet-lite0").model()
    expected = {"animals/mammals/badger.png": 362, "animals/mammals/equines/zebra.png": 340,
                "food/fruit/banana.png": 954}
    x = torch.from_numpy(np.stack([to_input(load_image(tuxpaint.ROOT / p), 224) for p in expected]))
    with torch.inference_mode():
        assert model(x).argmax(1).tolist() == list(expected.values())
