"""The web page in a real browser (Debian's chromium through Playwright) against a real `groundglass
serve` with the tiny model: ask and watch the answer stream, open a citation's card, follow up in the
same thread, find the thread again after a reload, share it read-only, delete it, watch reasoning steps
appear while they run, paste an image, hit the rate limit, stop a stream (and the server stops
generating), and the error messages for a revoked key, a failing model and a server that is down.
axe-core (vendored) checks accessibility.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_helpers import Server, free_port, ledger_rows
from web_helpers import Site

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

AXE = Path(__file__).with_name("axe.min.js")
EIFFEL = "When was the Eiffel Tower completed?"
ANSWER_TIMEOUT_MS = 90_000  # a busy two-core machine shares the tiny model with other tests


def new_page(browser: Any, site: Site, key: str | None, **context: Any) -> Any:
    """A fresh browser profile on the page, with ``key`` already in its storage (None: no key), axe-core
    loaded (an init script, so the page's Content-Security-Policy stays on), and its script errors and
    CSP refusals collected in ``page.problems``."""
    ctx = browser.new_context(**context)
    ctx.add_init_script(path=str(AXE))
    if key:
        ctx.add_init_script(f"localStorage.setItem('groundglass.key', {key!r})")
    page = ctx.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"script error: {e}"))
    page.on(
        "console",
        lambda m: (
            page.problems.append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    page.goto(site.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return page


def close(page: Any) -> None:
    problems = page.problems
    page.context.close()
    assert problems == []


def ask(page: Any, question: str) -> Any:
    """Type ``question``, press Enter; the new turn's locator."""
    count = page.locator("article.turn").count()
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    turn = page.locator("article.turn").nth(count)
    expect(turn).to_be_visible()
    return turn


def answered(turn: Any, state: str = "answered") -> None:
    expect(turn).to_have_attribute("data-done", state, timeout=ANSWER_TIMEOUT_MS)


def watch_answer(page: Any) -> None:
    """Record, at each change of the page, the newest turn's state: whether its answer is still busy,
    how many sources it shows and how much answer text (window.answerStates)."""
    page.evaluate("""() => {
        window.answerStates = [];
        new MutationObserver(() => {
            const turns = document.querySelectorAll('article.turn');
            const last = turns[turns.length - 1];
            if (!last) return;
            const answer = last.querySelector('.answer');
            window.answerStates.push({
                busy: answer.getAttribute('aria-busy') === 'true',
                sources: last.querySelectorAll('.sources li').length,
                text: answer.querySelector('.working') ? 0 : answer.textContent.length,
                steps: last.querySelectorAll('.trace:not([hidden]) .steps > li:not(.step-running)').length,
            });
        }).observe(document.getElementById('conversation'),
                   {subtree: true, childList: true, characterData: true, attributes: true});
    }""")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:3],
        }
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def shot(page: Any, screens: Path, name: str, **kwargs: Any) -> None:
    page.screenshot(path=str(screens / f"{name}.png"), **kwargs)


def api_thread(site: Site, thread_id: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or site.key}"}
    return httpx.get(f"{site.url}/v1/threads/{thread_id}", headers=headers, timeout=30)


def test_ask_stream_cite_follow_up_history_share_delete(browser: Any, site: Site, screens: Path) -> None:
    page = new_page(browser, site, key=None)
    # keys are on: the page asks for one before anything else
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("needs an API key")
    shot(page, screens, "01-key-dialog")
    page.locator("#key-input").fill(site.key)
    page.locator("#key-input").press("Enter")
    expect(dialog).to_be_hidden()
    assert page.evaluate("() => localStorage.getItem('groundglass.key')") == site.key
    # the selectors: the local index by name (from GET /v1/indexes), the web, the models
    expect(page.locator("#where option")).to_have_text(["docs (7 docs)", "Web"])
    expect(page.locator("#where")).to_have_value("index:docs")
    assert "long" in page.locator("#model option").all_inner_texts()

    watch_answer(page)
    turn = ask(page, EIFFEL)
    answered(turn)
    # it streamed: the sources showed while the answer was still being written, before its first words,
    # and the words showed before the stream ended
    states = page.evaluate("() => window.answerStates")
    first_text = next(i for i, st in enumerate(states) if st["text"])
    assert any(st["busy"] and st["sources"] and not st["text"] for st in states[:first_text]), states
    assert states[first_text]["busy"], states
    assert not states[-1]["busy"] and states[-1]["text"]
    assert float(turn.get_attribute("data-first-token-ms")) > 0
    # sources panel: the Eiffel Tower page, with site and relevance
    sources = turn.locator(".sources li")
    titles = sources.locator(".source-title").all_inner_texts()
    assert "Eiffel Tower" in titles
    expect(turn.locator(".sources")).to_contain_text("wikipedia.org")
    shot(page, screens, "02-answer")
    page.locator("#question").focus()

    # the answer was kept: a thread, in the URL and in the history
    expect(turn).to_have_attribute("data-saved", "true")
    thread_id = re.search(r"thread=(thr_\w+)", page.url).group(1)
    expect(page.locator("#history .history-item")).to_have_count(1)
    expect(page.locator("#thread-title")).to_have_text(EIFFEL)

    # follow up: the second question goes out with the first exchange, in the same thread
    requests: list[dict[str, Any]] = []
    page.on(
        "request",
        lambda r: requests.append(r.post_data_json) if r.url.endswith("/chat/completions") else None,
    )
    second = ask(page, "How tall is it?")
    answered(second)
    expect(second).to_have_attribute("data-saved", "true")
    sent = requests[-1]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"] == EIFFEL and sent["stream"] is True
    assert sent["source"] == "index" and sent["index"] == "docs"
    stored = api_thread(site, thread_id).json()
    assert [t["question"] for t in stored["turns"]] == [EIFFEL, "How tall is it?"]
    assert stored["turns"][0]["details"]["search_results"][0]["url"].startswith("https://")
    shot(page, screens, "04-follow-up")

    # a third turn, added by another client of the threads API: an answer whose first sentence cites
    # the Eiffel Tower page and whose second the attribution flags as unsupported
    first = stored["turns"][0]["details"]["search_results"]
    n = next(i for i, r in enumerate(first, 1) if r["title"] == "Eiffel Tower")
    claims = [f"The Eiffel Tower was completed in 1889 [{n}].", f"It is made of cheese [{n}]."]
    # (and a source whose address is a script: any client may write a turn, and threads are shared)
    hostile = {"title": "Hostile", "url": "javascript:alert(1)", "date": None, "snippet": "x", "score": 0.1}
    details = {
        "search_results": [*first, hostile],
        "attribution": [
            {"sentence": claims[0], "citations": [n], "support": 0.83, "supported": True},
            {"sentence": claims[1], "citations": [n], "support": 0.12, "supported": False},
        ],
    }
    added = httpx.post(
        f"{site.url}/v1/threads/{thread_id}/turns",
        headers={"Authorization": f"Bearer {site.key}"},
        timeout=30,
        json={"question": "What is it made of?", "answer": " ".join(claims), "details": details},
    )
    assert added.status_code == 201

    # reload a fresh page: the thread is in the history, and reopens with all its turns
    page.goto(site.url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    item = page.locator("#history .history-item").first
    expect(item).to_contain_text(EIFFEL)
    expect(item).to_contain_text("3 questions")
    item.click()
    expect(page.locator("article.turn")).to_have_count(3)
    expect(page.locator("article.turn .question-text").first).to_have_text(EIFFEL)
    expect(page.locator("article.turn").first.locator(".sources li").first).to_be_visible()
    expect(item).to_have_attribute("aria-current", "page")

    # a citation: its card on hover, pinned by a click, and on keyboard focus; the unsupported sentence
    turn = page.locator("article.turn").nth(2)
    expect(turn.locator(".sentence.unsupported")).to_have_text(f"It is made of cheese {n}.")
    assert turn.locator(".source-title", has_text="Hostile").get_attribute("href") is None  # not a link
    supported = turn.locator(".sentence:not(.unsupported)")
    expect(supported).to_have_text(f"The Eiffel Tower was completed in 1889 {n}.")
    cite = turn.locator("a.cite").first
    cite.hover()
    card = page.locator("#card")
    expect(card).to_be_visible()
    expect(card).to_contain_text("Eiffel Tower")
    expect(card).to_contain_text("wikipedia.org")
    expect(card).to_contain_text("support 0.83 (supported)")
    page.mouse.move(0, 0)
    expect(card).to_be_hidden()
    cite.click()
    expect(card).to_be_visible()
    expect(card.locator("a.card-open")).to_have_attribute(
        "href", "https://en.wikipedia.org/wiki/Eiffel_Tower"
    )
    expect(turn.locator(f"#{turn.get_attribute('id')}-src-{n}")).to_have_class(re.compile("highlight"))
    shot(page, screens, "03-citation-card")
    page.keyboard.press("Escape")
    expect(card).to_be_hidden()
    turn.locator("a.cite").nth(1).focus()
    expect(card).to_be_visible()
    expect(card).to_contain_text("support 0.12 (not supported)")
    assert axe_violations(page) == []

    # share: a read-only link that a key of another project can open, and nobody can extend
    page.locator("#share-thread").click()
    expect(page.locator("#share-url")).to_have_value(re.compile(re.escape(site.url) + r"/share/shr_[\w-]+$"))
    share_url = page.locator("#share-url").input_value()
    other = new_page(browser, site, key=site.other_key)
    other.goto(share_url)
    expect(other.locator("article.turn")).to_have_count(3)
    expect(other.locator("#read-only-note")).to_be_visible()
    expect(other.locator("#ask-form")).to_be_hidden()
    expect(other.locator("#thread-actions")).to_be_hidden()
    shot(other, screens, "05-shared-read-only")
    assert api_thread(site, thread_id, key=site.other_key).status_code == 404  # not theirs to change
    close(other)

    # delete: gone from the history and from the server
    page.once("dialog", lambda d: d.accept())
    page.locator("#delete-thread").click()
    expect(page.locator("#history .history-item")).to_have_count(0)
    expect(page.locator("#history-empty")).to_be_visible()
    assert api_thread(site, thread_id).status_code == 404
    close(page)


def test_reasoning_steps_show_while_they_run(browser: Any, site: Site, screens: Path) -> None:
    page = new_page(browser, site, key=site.key)
    # medium effort: the <think> steps show as a list while they run, then fold away under the answer
    page.locator("#effort").select_option("medium")
    watch_answer(page)
    turn = ask(page, "Who designed the Eiffel Tower, and when did Apollo 11 land on the Moon?")
    expect(turn).to_have_attribute("data-done", "answered", timeout=3 * ANSWER_TIMEOUT_MS)  # plan, steps
    states = page.evaluate("() => window.answerStates")
    assert any(st["busy"] and st["steps"] and not st["text"] for st in states), states
    trace = turn.locator("details.trace")
    expect(trace).not_to_have_attribute("open", "")
    expect(trace.locator("summary")).to_contain_text(re.compile(r"Reasoning: \d+ steps?"))
    trace.locator("summary").click()
    expect(trace.locator(".steps > li").first).to_be_visible()
    expect(trace.locator(".step-time").first).to_have_text(re.compile(r"^\d+\.\d s$"))
    shot(page, screens, "05b-reasoning-steps")
    close(page)


def test_stop_a_stream_and_the_server_stops_generating(browser: Any, site: Site, screens: Path) -> None:
    page = new_page(browser, site, key=site.key)
    page.locator("#model").select_option("long")
    turn = ask(page, "Tell me everything about Ada Lovelace and the Analytical Engine.")
    expect(turn.locator(".sources li").first).to_be_visible(timeout=ANSWER_TIMEOUT_MS)  # now writing
    stop = page.locator("#stop-button")
    expect(stop).to_be_visible()
    stop.click()
    stopped_at = time.monotonic()
    answered(turn, "stopped")
    expect(turn.locator(".turn-note")).to_contain_text("Stopped")
    expect(stop).to_be_hidden()
    shot(page, screens, "06-stopped")
    # the server let go of the engine (no run in flight) and recorded the abandoned request (499; one
    # that ran to its end would be a 200). The model stops at its next token, or at its next batch of
    # the prompt while it still reads it (a second or two on a busy machine), hence the margin.
    deadline = stopped_at + 20
    while True:
        metrics = httpx.get(site.url + "/metrics", timeout=10).text
        inflight = re.search(r"^groundglass_engine_inflight\S* (\S+)$", metrics, re.M)
        rows = [r for r in ledger_rows(site.server.home) if r["status"] == 499]
        if inflight and float(inflight.group(1)) == 0 and rows:
            break
        assert time.monotonic() < deadline, f"still generating: {inflight and inflight.group(0)}, {rows}"
        time.sleep(0.2)
    assert rows[-1]["completion_tokens"] < 800  # stopped before the preset's 800 tokens
    close(page)


def test_rate_limit_revoked_key_and_model_failure_read_as_messages(
    browser: Any, site: Site, screens: Path
) -> None:
    page = new_page(browser, site, key=site.slow_key)  # 1 request per minute
    answered(ask(page, EIFFEL))
    refused = ask(page, "How tall is the Eiffel Tower?")
    answered(refused, "error")
    banner = page.locator("#banner")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Too many requests: rate limit reached: 1 requests per minute")
    expect(banner).to_contain_text(re.compile(r"Try again in \d+ s\."))
    seconds = int(re.search(r"Try again in (\d+) s", banner.inner_text()).group(1))
    assert 0 < seconds <= 60
    expect(refused.locator(".turn-note")).to_have_attribute("role", "alert")
    shot(page, screens, "07-rate-limited")
    close(page)

    page = new_page(browser, site, key=site.revoked_key)
    expect(page.locator("#key-dialog")).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("invalid or has been revoked")
    page.locator("#key-cancel").click()
    close(page)

    page = new_page(browser, site, key=site.key)
    page.locator("#model").select_option("broken")
    failed = ask(page, EIFFEL)
    answered(failed, "error")
    expect(failed.locator(".turn-note")).to_contain_text("The model failed to answer")
    expect(page.locator("#banner")).to_contain_text("The model failed to answer")
    close(page)


def terminal_png() -> bytes:
    from vision_screens import TERMINAL_ERROR, terminal

    return terminal(TERMINAL_ERROR).png()


def test_open_mode_image_paste_phone_width_dark_theme_and_server_down(
    browser: Any, web_home: Path, screens: Path
) -> None:
    server = Server(web_home, free_port(), args=["--open"]).start()
    try:
        site = Site(server=server)
        page = new_page(browser, site, key=None, viewport={"width": 390, "height": 844})
        expect(page.locator("#key-dialog")).to_be_hidden()  # --open: no key needed
        expect(page.locator("#key-button")).to_be_hidden()
        # paste an image (a rendered terminal screenshot) into the question box
        png = base64.b64encode(terminal_png()).decode()
        page.locator("#question").focus()
        page.evaluate(
            """(b64) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const data = new DataTransfer();
            data.items.add(new File([bytes], 'screenshot.png', {type: 'image/png'}));
            document.getElementById('question').dispatchEvent(
                new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
        }""",
            png,
        )
        expect(page.locator("#attachments img")).to_have_count(1)
        turn = ask(page, "How do I fix this?")
        facts = turn.locator(".facts-panel")
        expect(facts).to_contain_text("No module named", timeout=ANSWER_TIMEOUT_MS)
        answered(turn)
        # what was read from the image was on the page before the answer's first word
        facts_ms = float(turn.get_attribute("data-facts-ms"))
        assert 0 < facts_ms <= float(turn.get_attribute("data-first-token-ms"))
        expect(turn.locator(".question-images img")).to_have_count(1)
        # phone width: nothing wider than the screen; the history opens from its button
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        shot(page, screens, "08-image-phone")
        page.locator("#menu-toggle").click()
        expect(page.locator("#sidebar")).to_be_in_viewport()
        page.keyboard.press("Escape")
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        expect(page.locator("#menu-toggle")).to_be_focused()
        # dark theme: the toggle (in the history panel on a phone) flips it and survives a reload
        page.locator("#menu-toggle").click()
        page.locator("#theme-toggle").click()
        theme = page.evaluate("() => document.documentElement.dataset.theme")
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        assert page.evaluate("() => document.documentElement.dataset.theme") == theme
        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert (background == "rgb(21, 24, 27)") == (theme == "dark"), (theme, background)
        assert axe_violations(page) == []
        page.locator("#menu-toggle").click()
        page.locator("#history .history-item").first.click()
        expect(page.locator("#sidebar")).not_to_be_in_viewport()
        expect(page.locator("article.turn")).to_have_count(1)
        shot(page, screens, "09-dark-phone")
        assert axe_violations(page) == []
    finally:
        server.stop()
    # the server is gone: asking says so
    turn = ask(page, "Is anyone there?")
    answered(turn, "error")
    expect(turn.locator(".turn-note")).to_contain_text("Cannot reach the groundglass server")
    close(page)
