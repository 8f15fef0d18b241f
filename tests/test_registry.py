"""One Registry for strategies, trainers, datasets, feature extractors and encoders: lazy built-ins, the
decorator, duplicate names, entry points of installed packages, one-line errors."""

from __future__ import annotations

import sys

import pytest

from bmmal import datasets, features, strategies, trainers
from bmmal.errors import BmmalError
from bmmal.models import encoders
from bmmal.registry import Registry, place_of
from tests.test_entry_points import make_package

GROUP = "bmmal.test-registry"

RANKER = '''
class Ranker:
    name = "ranker"

    def __init__(self, depth=1):
        self.depth = depth
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for throwaway modules and packages, forgotten again after the test."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def test_builtins_are_imported_on_first_lookup(site):
    (site / "lazy_builtin.py").write_text(RANKER)
    registry = Registry("thing", GROUP, {"ranker": "lazy_builtin:Ranker"}, named=True)
    assert registry.available() == ["ranker"] and "lazy_builtin" not in sys.modules
    assert registry.get("ranker", depth=3).depth == 3
    assert registry.origin("ranker") == "bmmal"


def test_decorator_by_name_attribute_and_by_explicit_name():
    registry = Registry("thing", GROUP)

    @registry.register
    class Named:
        name = "named"

    @registry.register("factory")
    def make(size=2):
        return [0] * size

    assert registry.lookup("named") is Named and registry.get("factory", size=3) == [0, 0, 0]
    assert registry.available() == ["factory", "named"]
    with pytest.raises(BmmalError, match="needs a `name`"):
        registry.register(type("Anonymous", (), {}))


def test_duplicate_name_is_an_error_naming_both_places():
    registry = Registry("thing", GROUP, {"ranker": "somewhere.else:Ranker"})

    class Ranker:
        name = "ranker"

    with pytest.raises(BmmalError) as error:
        registry.register(Ranker)
    message = str(error.value)
    assert "thing 'ranker' is registered twice" in message
    assert "somewhere.else:Ranker (bmmal)" in message and place_of(Ranker) in message and "\n" not in message


def test_the_same_place_registered_again_is_not_a_duplicate(site):
    (site / "decorated_builtin.py").write_text(
        "from tests.test_registry import SHARED\n\n@SHARED.register\n" + RANKER.lstrip())
    # the built-in's own module registers its class with the decorator when the lookup imports it
    cls = SHARED.lookup("ranker")
    assert cls.__module__ == "decorated_builtin" and SHARED.origin("ranker") == "bmmal"
    assert SHARED.register(cls) is cls and SHARED.register("ranker", "decorated_builtin:Ranker")


SHARED = Registry("thing", GROUP, {"ranker": "decorated_builtin:Ranker"}, named=True)


def test_a_name_must_match_the_class_name_in_named_registries(site):
    (site / "misnamed.py").write_text(RANKER)
    registry = Registry("thing", GROUP, {"other": "misnamed:Ranker"}, named=True)
    with pytest.raises(BmmalError, match="thing 'other' .* has name 'ranker'; the two must agree"):
        registry.lookup("other")


def test_unknown_names_and_bad_parameters_are_one_line_errors():
    registry = Registry("thing", GROUP)

    @registry.register("plain")
    def plain(size=1):
        return size

    @registry.register("sized")
    def sized(size):
        return size

    with pytest.raises(BmmalError, match=r"^unknown thing 'nope'; available: plain, sized$"):
        registry.lookup("nope")
    with pytest.raises(BmmalError, match=r"^unknown strategy 'entrpy' \(did you mean 'entropy'\?\); available: "):
        strategies.get("entrpy")
    with pytest.raises(BmmalError, match=r"^thing 'plain': unknown parameter 'width'; its parameters: size$"):
        registry.get("plain", width=2)
    with pytest.raises(BmmalError, match=r"^thing 'sized': bad parameters \(.*'size'"):
        registry.get("sized")
    with pytest.raises(BmmalError, match=r"^strategy 'random': unknown parameter 'depth'"):
        strategies.get("random", depth=2)


def test_entry_points_of_installed_packages_are_found_and_loaded_lazily(site):
    make_package(site, "acme_rankers", RANKER, {GROUP: {"ranker": "acme_rankers:Ranker"}})
    registry = Registry("thing", GROUP, named=True)
    assert registry.available() == ["ranker"] and "acme_rankers" not in sys.modules
    assert registry.get("ranker").depth == 1
    assert registry.origin("ranker") == f"package acme-al 0.1, entry point {GROUP}"


def test_a_broken_entry_point_is_one_line_naming_the_package(site):
    make_package(site, "acme_broken", "import not_installed_anywhere\n", {GROUP: {"ranker": "acme_broken:Ranker"}})
    registry = Registry("thing", GROUP)
    assert registry.available() == ["ranker"]  # listing does not import it
    with pytest.raises(BmmalError) as error:
        registry.lookup("ranker")
    message = str(error.value)
    assert "\n" not in message and "package acme-al 0.1" in message
    assert "cannot be loaded: ModuleNotFoundError: No module named 'not_installed_anywhere'" in message


def test_an_entry_point_taking_a_builtin_name_is_a_duplicate(site):
    make_package(site, "acme_clash", RANKER, {GROUP: {"ranker": "acme_clash:Ranker"}})
    registry = Registry("thing", GROUP, {"ranker": "bmmal_own:Ranker"})
    for _ in range(2):  # not only on the first lookup
        with pytest.raises(BmmalError, match=r"registered twice: by bmmal_own:Ranker \(bmmal\) and by "
                                             r"acme_clash:Ranker \(package acme-al 0.1"):
            registry.available()


def test_a_package_that_re_exports_its_decorated_class_is_not_a_duplicate(site):
    (site / "acme_impl.py").write_text(
        "from tests.test_registry import REEXPORT\n\n@REEXPORT.register\n" + RANKER.lstrip())
    make_package(site, "acme_public", "from acme_impl import Ranker\n", {GROUP: {"ranker": "acme_public:Ranker"}})
    assert REEXPORT.lookup("ranker").__module__ == "acme_impl"


REEXPORT = Registry("thing", GROUP, named=True)


@pytest.mark.parametrize("registry", [strategies.registry.STRATEGIES, trainers.registry.TRAINERS,
                                      datasets.DATASETS, features.EXTRACTORS, encoders.ENCODERS],
                         ids=lambda r: r.kind)
def test_every_builtin_target_agrees_with_its_module(registry):
    """Importing each built-in (whose module may also use the decorator) raises no duplicate."""
    for name in registry.available():
        obj = registry.lookup(name)
        assert getattr(obj, "name", name) == name or registry is features.EXTRACTORS


def test_public_names_of_every_kind_still_work(site, monkeypatch):
    (site / "user_parts.py").write_text('''
from bmmal.models import register_encoder
from bmmal import datasets


@register_encoder("user-encoder")
def user_encoder(input_shape, width=3):
    return ("encoder", input_shape, width)


@datasets.register("user-data")
def load_user_data(modalities=None, seed=0, size=4):
    return ("data", size)
''')
    for registry in (encoders.ENCODERS, datasets.DATASETS):  # the test's names vanish afterwards
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    import user_parts  # noqa: F401  (registers on import, as a user's script does)

    assert encoders.build_encoder("user-encoder", (5,)) == ("encoder", (5,), 3)
    assert "user-encoder" in encoders.encoder_kinds()
    assert datasets.load("user-data", size=2) == ("data", 2)
    datasets.register("user-data-2", "user_parts:load_user_data")
    assert datasets.load("user-data-2") == ("data", 4)
    with pytest.raises(BmmalError, match="dataset 'user-data' is registered twice"):
        datasets.register("user-data", "user_parts:user_encoder")
    assert strategies.strategy_class("entropy").name == "entropy"
    assert trainers.trainer_class("joint").name == "joint"
    assert "mfeat" in datasets.available() and "mfcc" in features.available()
