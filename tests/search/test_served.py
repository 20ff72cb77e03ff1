"""A real server on 127.0.0.1: concurrent clients, and the page in Chromium."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("httpx", reason="the client side uses httpx (pip install 'crosskd[test]')")

import httpx  # noqa: E402

from own_videos import OWN_NAME  # noqa: E402
from serving import running_server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
CLIENTS, REQUESTS = 8, 25


@pytest.fixture(scope="module")
def server(tiny_collection, tmp_path_factory):
    """The tiny index served, one video's first caption replaced by markup."""
    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(tiny_collection[3], index)
    texts_path = index / "captions" / "texts.json"
    texts = json.loads(texts_path.read_text())
    texts["video34"][0] = HOSTILE
    texts_path.write_text(json.dumps(texts))
    with running_server(index) as url:
        yield url


@pytest.fixture
def sync_api():
    """playwright's sync API, skipping (with how to get it) where it or Chromium is missing."""
    api = pytest.importorskip("playwright.sync_api",
                              reason="the page test drives Chromium with playwright "
                              "(pip install 'crosskd[test]')")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"the page test needs Debian's Chromium at {CHROMIUM} "
                    "(apt-get install chromium)")
    return api


@pytest.fixture
def open_page(sync_api):
    """`with open_page(url) as (page, errors)`: the page at `url` in headless Chromium, and
    the script errors it raised."""

    @contextlib.contextmanager
    def opened(url: str):
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(url + "/")
                yield page, errors
            finally:
                browser.close()

    return opened


def test_concurrent_clients_all_get_the_same_answers(server):
    queries = [f"video{v}:0" for v in (34, 46, 4, 43)]
    expected = {q: httpx.get(f"{server}/search", params={"caption": q, "k": 10}).json()
                for q in queries}

    def client(n: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=server, timeout=30) as http:
            for i in range(REQUESTS):
                query = queries[(n + i) % len(queries)]
                response = http.get("/search", params={"caption": query, "k": 10})
                if response.status_code != 200 or response.json() != expected[query]:
                    problems.append(f"{query}: {response.status_code}")
        return problems

    with ThreadPoolExecutor(CLIENTS) as pool:
        problems = [p for found in pool.map(client, range(CLIENTS)) for p in found]
    assert problems == []
    assert httpx.get(f"{server}/healthz").json()["status"] == "ok"


def test_the_page_shows_result_cards_and_captions_as_text(server, sync_api, open_page):
    with open_page(server) as (page, errors):
        expect = sync_api.expect  # waits without evaluating strings (the page's CSP)
        expect(page.locator("#summary")).to_contain_text("18 videos")
        assert page.input_value("#mode") == "caption"  # no free text for this dataset
        page.fill("#query", "video34:0")
        page.press("#query", "Enter")
        page.wait_for_selector(".card")
        cards = page.locator(".card")
        assert cards.count() == 12
        own = page.locator('.card[data-video-id="video34"]')
        assert HOSTILE in own.locator(".captions li").first.text_content()
        assert page.evaluate("window.__xss") is None
        assert page.locator("#results script, #results img").count() == 0
        assert own.locator(".bar-row").count() == 7  # one bar per expert
        page.fill("#query", "nope:0")
        page.press("#query", "Enter")
        expect(page.locator("#message")).to_contain_text("no video 'nope'")
        assert errors == []


def test_the_page_ranks_with_qbnorm_and_turns_it_off(tiny_qbnorm_index, sync_api, open_page):
    """An index with a bank: the page offers QB-Norm (on), shows each card's normalised
    score, and unticked asks for the raw ranking, as /search?qbnorm=0 answers it."""
    query = "video46:0"
    with running_server(tiny_qbnorm_index[0]) as url:
        answers = {flag: httpx.get(f"{url}/search",
                                   params={"caption": query, "k": 12, "qbnorm": flag}).json()
                   for flag in ("0", "1")}
        with open_page(url) as (page, errors):
            expect = sync_api.expect
            expect(page.locator("#summary")).to_contain_text("QB-Norm (beta 20, bank of 106)")
            assert page.is_visible("#qbnorm") and page.is_checked("#qbnorm")
            for flag, tick in (("1", True), ("0", False)):
                page.set_checked("#qbnorm", tick)
                page.fill("#query", query)
                page.press("#query", "Enter")
                expect(page.locator("#weights")).to_contain_text(
                    "QB-Norm" if flag == "1" else "; raw ranking")
                shown = page.locator(".card").evaluate_all(
                    "cards => cards.map(card => card.dataset.videoId)")
                assert shown == [hit["video_id"] for hit in answers[flag]["results"]]
                assert page.locator(".card .normalised").count() == 12
            assert errors == []


def test_the_page_shows_what_videos_read_or_heard_as_text(tiny_read_index, sync_api,
                                                          open_page):
    """Each card lists its video's read or heard text (ocr, speech) as text: markup in it
    is shown, never run."""
    root, recorded = tiny_read_index
    with running_server(root) as url, open_page(url) as (page, errors):
        sync_api.expect(page.locator("#summary")).to_contain_text("18 videos")
        page.fill("#k", "18")
        page.fill("#query", "video34:0")
        page.press("#query", "Enter")
        page.wait_for_selector(".card")
        own = page.locator('.card[data-video-id="video34"] .read')
        assert own.locator("dt").all_text_contents() == ["ocr", "speech"]
        assert own.locator("dd").all_text_contents() == list(recorded["video34"].values())
        assert page.locator('.card[data-video-id="video46"] .read dd').text_content() == \
            "BREAKING NEWS"
        assert page.locator(".card .read").count() == 3  # only videos with read text
        assert page.evaluate("window.__xss") is None
        assert page.locator("#results img, #results script").count() == 0
        assert errors == []


def test_the_page_names_an_own_collection_and_searches_all_of_it(own_collection, sync_api,
                                                                 open_page):
    """An own collection's page says its name and counts (from /healthz), never a published
    dataset's, and free text finds every video, those without captions too."""
    summary = f"10 videos of {OWN_NAME} (8 with captions, 32 captions)"
    with running_server(own_collection / "index") as url:
        collection = httpx.get(f"{url}/healthz").json()["collection"]
        assert (collection["name"], collection["split"], collection["summary"]) == \
            (OWN_NAME, None, summary)
        with open_page(url) as (page, errors):
            sync_api.expect(page.locator("#summary")).to_have_text(f"{summary}, exact search")
            assert page.title() == f"crosskd search: {OWN_NAME}"
            page.fill("#k", "10")
            page.fill("#query", "a red circle")
            page.press("#query", "Enter")
            page.wait_for_selector(".card")
            shown = page.locator(".card").evaluate_all(
                "cards => cards.map(card => card.dataset.videoId)")
            assert sorted(shown) == [f"video{n:04d}" for n in range(10)]
            assert "MSRVTT" not in page.locator("body").text_content()
            assert errors == []


def test_the_page_shows_moments_and_plays_a_hit_from_its_start(segmented_collection, sync_api,
                                                               open_page):
    """An index of segments: each card shows its keyframe, video and time range; a click
    plays the source video from the segment's start (within a frame) to its end; "one per
    video" keeps each video's best segment."""
    frame = 1 / 8  # the test videos' frame rate
    with running_server(segmented_collection / "index") as url:
        hits = httpx.get(f"{url}/search", params={"q": "a red circle", "k": 9}).json()["results"]
        with open_page(url) as (page, errors):
            expect = sync_api.expect
            expect(page.locator("#summary")).to_contain_text("3 videos of Lectures in 9 segments")
            assert page.is_visible("#per-video") and not page.is_checked("#per-video")
            page.fill("#k", "9")
            page.fill("#query", "a red circle")
            page.press("#query", "Enter")
            page.wait_for_selector(".card")
            cards = page.locator(".card")
            assert cards.evaluate_all("cards => cards.map(c => c.dataset.segmentId)") == \
                [hit["segment_id"] for hit in hits]
            hit = next(h for h in hits if h["start"] > 0)
            card = page.locator(f'.card[data-segment-id="{hit["segment_id"]}"]')
            assert card.locator(".video-id").text_content().endswith(hit["video_id"])
            start, end = int(hit["start"]), int(hit["end"])
            assert card.locator(".moment").text_content() == f"00:{start:02d}-00:{end:02d}"
            assert card.locator("img").get_attribute("src") == \
                f"/videos/{hit['segment_id'].replace('@', '%40')}/thumbnail"
            card.click()
            expect(card.locator("video")).to_have_count(1)
            played = _played_range(page, card)
            assert abs(played[0] - hit["start"]) <= frame, played
            assert hit["end"] - frame <= played[1] <= hit["end"] + 0.5, played  # paused at end
            page.set_checked("#per-video", True)
            page.press("#query", "Enter")
            expect(cards).to_have_count(3)
            shown = cards.evaluate_all("cards => cards.map(c => c.dataset.videoId)")
            assert shown == list(dict.fromkeys(hit["video_id"] for hit in hits))
            assert errors == []


def _played_range(page, card, timeout: float = 30.0) -> tuple[float, float]:
    """Where the card's video began and stopped playing (its `played` ranges), once it has
    played and paused."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = card.locator("video").evaluate(
            "v => [v.paused, v.played.length, v.played.length ? v.played.start(0) : -1,"
            " v.played.length ? v.played.end(v.played.length - 1) : -1, v.error && v.error.code]")
        assert state[4] is None, f"the video failed to play: {state}"
        if state[0] and state[1] and state[3] > state[2]:
            return state[2], state[3]
        time.sleep(0.1)
    raise AssertionError(f"the video did not play and stop: {state}")
