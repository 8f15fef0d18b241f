"""The labelling page in headless Chromium (Debian `chromium`, driven by Playwright): click and type answers,
skip, undo, and check what reached the database. Saves a screenshot to test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bmmal.labelling.query import query
from test_labelling_helpers import CLASSES, feature_cache, new_project, running_server, true_label  # noqa: F401

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

playwright = pytest.importorskip("playwright.sync_api", reason="needs Playwright: pip install 'bmmal[label]'")
pytestmark = [
    pytest.mark.usefixtures("feature_cache"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium: apt-get install chromium"),
]


def shown_id(page) -> str:
    return page.text_content("#sample-id")


def wait_for_other_sample(page, previous: str) -> str:
    page.wait_for_function("id => { const card = document.querySelector('#card');"
                           " return !card.hidden && document.querySelector('#sample-id').textContent !== id; }",
                           arg=previous)
    return shown_id(page)


def test_label_in_chromium(tmp_path):
    project = new_project(tmp_path)
    batch = query(project, 6, "bmmal")
    with running_server(project) as url, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
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
            browser.close()

    labels = project.store.labels()
    assert {i: labels[i] for i in answered} == {i: true_label(i) for i in answered}
    assert set(project.store.pending()) == set(batch.sample_ids) - set(answered)
    with project.store.reading() as db:
        labellers = {r[0] for r in db.execute("SELECT labeller FROM labels WHERE source = 'web'")}
    assert labellers == {"Tester"}
    assert (tmp_path / "labelling-page.png").stat().st_size > 10_000
