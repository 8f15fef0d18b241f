"""The labelling page in headless Chromium (Debian `chromium`, driven by Playwright): click and type answers,
skip, undo, the search picker over 300+ classes, a phone-sized screen, an SVG that carries a script; and
what reached the database. Saves screenshots to test-artifacts/."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from bmmal.labelling.project import Project
from bmmal.labelling.query import query
from test_labelling_helpers import (  # noqa: F401
    CLASSES,
    EXTRACTORS,
    feature_cache,
    new_project,
    running_server,
    true_label,
    write_manifest,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

playwright = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install 'bmmal[label]'")
pytestmark = [
    pytest.mark.usefixtures("feature_cache"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def shown_id(page) -> str:
    return page.text_content("#sample-id")


def wait_for_other_sample(page, previous: str) -> str:
    page.wait_for_function("id => { const card = document.querySelector('#card');"
                           " return !card.hidden && document.querySelector('#sample-id').textContent !== id; }",
                           arg=previous)
    return shown_id(page)


def test_label_in_chromium(tmp_path, browser):
    project = new_project(tmp_path)
    batch = query(project, 6, "bmmal")
    with running_server(project) as url:
        page = browser.new_page(viewport={"width": 1100, "height": 720})
        try:
            page.goto(url)
            page.wait_for_selector("#card:not([hidden])")
            page.fill("#labeller", "Tester")
            page.dispatch_event("#labeller", "change")
            assert page.eval_on_selector_all(".classes button", "bs => bs.map(b => b.dataset.label)") == list(CLASSES)
            # every modality is shown: the image decoded, the audio's length known, the caption as text
            page.wait_for_function("document.querySelector('.field-image img').naturalWidth > 0")
            page.wait_for_function("document.querySelector('audio').duration > 0")
            assert page.text_content(".field-text .text").strip()

            answered = []
            for _ in range(2):  # by clicking
                current = shown_id(page)
                page.click(f".classes button[data-label='{true_label(current)}']")
                answered.append(current)
                wait_for_other_sample(page, current)
            current = shown_id(page)  # by keyboard shortcut
            page.keyboard.press(str(CLASSES.index(true_label(current)) + 1))
            answered.append(current)
            skipped = wait_for_other_sample(page, current)
            page.keyboard.press("s")  # skip ...
            wait_for_other_sample(page, skipped)
            page.keyboard.press("u")  # ... and undo the skip: the skipped sample is back
            page.wait_for_function("id => document.querySelector('#sample-id').textContent === id", arg=skipped)
            page.keyboard.press("u")  # undo the keyboard answer too: that sample is back, unlabelled
            page.wait_for_function("id => document.querySelector('#sample-id').textContent === id",
                                   arg=answered[-1])
            assert answered[-1] not in project.store.labels()
            page.keyboard.press(str(CLASSES.index(true_label(answered[-1])) + 1))
            wait_for_other_sample(page, answered[-1])
            page.wait_for_function("document.querySelector('#progress-text').textContent.startsWith('3 / 6')")

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(tmp_path / "labelling-page.png"), full_page=True)
            shutil.copy(tmp_path / "labelling-page.png", ARTIFACTS / "labelling-page.png")
        finally:
            page.close()

    labels = project.store.labels()
    assert {i: labels[i] for i in answered} == {i: true_label(i) for i in answered}
    assert set(project.store.pending()) == set(batch.sample_ids) - set(answered)
    with project.store.reading() as db:
        labellers = {r[0] for r in db.execute("SELECT labeller FROM labels WHERE source = 'web'")}
    assert labellers == {"Tester"}
    assert (tmp_path / "labelling-page.png").stat().st_size > 10_000


FOODS = ["apple", "bean", "carrot", "dumpling", "egg", "fig", "garlic", "hummus", "ice_cream", "jam", "kale",
         "lentil", "mango", "noodle", "olive", "pea", "quince", "rice", "tofu", "yam"]
DISHES = ["bake", "bowl", "cake", "curry", "fry", "grill", "pie", "roll", "salad", "soup", "stew", "tart",
          "toast", "wrap", "sandwich"]
MANY = (*CLASSES, *(f"{food}_{dish}" for food in FOODS for dish in DISHES))  # 303 classes


def many_class_project(tmp_path) -> Project:
    manifest = write_manifest(tmp_path / "data", n=30, seeds_per_class=2)
    return Project.create(tmp_path / "project", manifest, ",".join(MANY), extractors=EXTRACTORS,
                          train={"epochs": 5, "batch_size": 16})


def test_search_picker_with_300_classes(tmp_path, browser):
    project = many_class_project(tmp_path)
    query(project, 6, "bmmal")  # with a model: its top guesses are one-key choices
    expected = [c for c in MANY if c.replace("_", " ").startswith("tofu s")]  # the picker's order
    with running_server(project) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(url)
            page.wait_for_selector("#card:not([hidden])")
            assert page.is_hidden("#classes") and page.is_visible("#search")
            assert page.eval_on_selector_all("#class-list li", "items => items.length") == len(MANY)
            guesses = page.eval_on_selector_all("#guesses button", "bs => bs.map(b => b.dataset.label)")
            assert len(guesses) == 5 and set(guesses) <= set(MANY)

            first = shown_id(page)  # type a prefix (no click into the box first), arrow down once, Enter
            page.keyboard.type("tofu s")
            page.wait_for_function("n => document.querySelectorAll('#class-list li').length === n",
                                   arg=len(expected))
            page.keyboard.press("ArrowDown")
            page.keyboard.press("Enter")
            second = wait_for_other_sample(page, first)
            assert project.store.labels()[first] == expected[1]

            guess = page.eval_on_selector("#guesses button", "b => b.dataset.label")  # before the page moves on
            page.keyboard.press("1")  # the model's best guess, by one key
            third = wait_for_other_sample(page, second)
            assert project.store.labels()[second] == guess
            recent = page.eval_on_selector_all("#recent button", "bs => bs.map(b => b.dataset.label)")
            assert expected[1] in recent or expected[1] in page.eval_on_selector_all(
                "#guesses button", "bs => bs.map(b => b.dataset.label)")

            page.keyboard.type("tofu sa")  # a click on a search result answers too
            page.click("#class-list li[data-label='tofu_salad']")
            wait_for_other_sample(page, third)
            assert project.store.labels()[third] == "tofu_salad"

            ARTIFACTS.mkdir(exist_ok=True)
            page.keyboard.type("rice")
            page.screenshot(path=str(ARTIFACTS / "labelling-303-classes-1280px.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.keyboard.press("Escape")
            layout = page.evaluate("""() => {
                const box = (s) => document.querySelector(s).getBoundingClientRect();
                return {scroll: document.documentElement.scrollWidth, bar: box('.bar').width,
                        input: box('#labeller').right, title: box('.title').bottom, progress: box('.progress').top,
                        list: box('#class-list').right, search: box('#search').width};
            }""")
            assert layout["scroll"] <= 390, layout  # nothing wider than the phone's screen
            assert layout["bar"] > 150 and layout["input"] <= 390 and layout["list"] <= 390, layout
            assert layout["progress"] >= layout["title"], layout  # the header's rows do not overlap
            page.screenshot(path=str(ARTIFACTS / "labelling-303-classes-390px.png"), full_page=True)
        finally:
            page.close()


def test_svg_media_cannot_run_code(tmp_path, browser):
    project = new_project(tmp_path)
    query(project, 4, "random")
    # a pool image that is an SVG with a script, which tries to label through the API from the server's origin
    (tmp_path / "data" / "media" / "evil.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40"><rect width="40" height="40" fill="red"/>'
        '<script>window.ran = true; fetch("/api/next", {method: "POST", headers: {"Content-Type": '
        '"application/json"}, body: JSON.stringify({session: "svg"})});</script></svg>')
    manifest = Path(project.settings.manifest)
    rows = list(csv.DictReader(manifest.open()))
    rows[20]["image"] = "media/evil.svg"
    with manifest.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    reopened = Project(project.dir)
    with running_server(reopened) as url:
        page = browser.new_page()
        try:
            response = page.goto(url.rstrip("/") + f"/media?id={rows[20]['id']}&m=image")
            assert response.status == 200 and "sandbox" in response.headers["content-security-policy"]
            page.wait_for_timeout(300)
            assert page.evaluate("() => window.ran === undefined")
        finally:
            page.close()
    with reopened.store.reading() as db:
        assert db.execute("SELECT count(*) FROM leases WHERE session = 'svg'").fetchone() == (0,)
