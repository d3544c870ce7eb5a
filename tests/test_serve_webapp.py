"""The operator's web app in Debian's Chromium (Selenium + chromium-driver, headless) against a
real `vapipe serve`: log in, draw a line on the car clip's camera by dragging, save, count,
events arriving live, a clip playing, and the editor on a 768x1024 screen."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib
from conftest import CAR, ROOT, SSD_XML
from rtsp import free_port

from tests.test_serve import Service

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DRIVER = shutil.which("chromedriver")
TOKEN = "webapp-token-0123456789"
IMAGES = ROOT / "docs" / "images"
# Across the car clip's road, drawn left to right: cars going up count `in`, down `out`
# (vapipe run --track --line m=0.05,0.52,0.95,0.48 on the clip: in 2, out 2).
LINE = ((0.05, 0.52), (0.95, 0.48))

pytestmark = pytest.mark.skipif(
    DRIVER is None, reason="needs chromium-driver (.ci/system-packages)"
)


class Serve(Service):
    """The service with an authorizing urllib opener (the token as a Bearer header)."""

    def call(self, method, path, body=None):
        import json
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, payload, kind = reply.status, reply.read(), reply.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers["Content-Type"]
        return status, json.loads(payload) if "json" in (kind or "") else payload


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("webapp")
    port = free_port()
    config = folder / "vapipe.toml"
    config.write_text(
        f'[model]\npath = "{SSD_XML}"\nlabels = ["vehicle", "person", "bike"]\n\n'
        f'[http]\nbind = "127.0.0.1:{port}"\ntoken = "{TOKEN}"\n\n'
        f'[output]\ndir = "{folder / "results"}"\n\n'
        f'[cameras.cars]\nsource = "{CAR}"\nrealtime = true\ntrack = true\n'
        "record = true\nclips = true\nclip_pre_seconds = 1\nclip_post_seconds = 1\n"
        "snapshots = true\n"
    )
    running = Serve(config, port)
    running.wait(lambda s: s.processed("cars") > 0, "the camera runs")
    if running.call("GET", "/api/session")[0] == 404:
        running.stop()
        pytest.skip("the service has no /api/session yet (api2's NEW routes)")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--autoplay-policy=no-user-gesture-required",
                 f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    driver.set_window_size(1280, 900)
    yield driver
    driver.quit()


def wait(driver, predicate, what: str, timeout: float = 30):
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: predicate(d), message=what
    )


def shot(driver, name: str) -> None:
    """The page as it is now, into docs/images with VAPIPE_SCREENSHOTS=1 (the README's
    pictures), else nowhere: a test run leaves the checkout as it was."""
    assert driver.get_screenshot_as_png()[:4] == b"\x89PNG"
    if os.environ.get("VAPIPE_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(IMAGES / f"webapp-{name}.png"))


def css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def active(driver, attribute: str) -> str | None:
    """An attribute of the focused element, read in one script (see `read`)."""
    return driver.execute_script(
        "return document.activeElement && document.activeElement.getAttribute(arguments[0])",
        attribute,
    )


def read(driver, selector, attribute: str | None = None) -> list[str]:
    """The text (or an attribute) of every element `selector` finds, read in one script: the
    overlay is redrawn when the camera's figures arrive, so elements found one call earlier
    may be gone."""
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map("
        "e => arguments[1] ? e.getAttribute(arguments[1]) : e.textContent)",
        selector, attribute,
    )  # fmt: skip


def test_draw_a_line_save_it_and_count_the_cars_live(service, browser):
    url = f"http://127.0.0.1:{service.port}/"
    browser.get(url)
    wait(browser, lambda d: css(d, "#login #token"), "the login prompt")
    assert "token" not in browser.current_url
    shot(browser, "login")
    css(browser, "#token")[0].send_keys(TOKEN + "\n")
    wait(browser, lambda d: css(d, '#cameras [data-camera="cars"] .state'), "the camera's card")
    wait(browser, lambda d: css(d, "#cameras img")[0].get_property("naturalWidth") > 0, "picture")
    assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    shot(browser, "cameras")

    css(browser, '#cameras [data-camera="cars"] h2 a')[0].click()
    wait(browser, lambda d: css(d, "svg.overlay") and css(d, "#save"), "the editor")
    overlay = css(browser, "svg.overlay")[0]
    wait(browser, lambda d: css(d, ".frame img")[0].get_property("naturalWidth") > 0, "picture")
    time.sleep(0.6)  # the frame takes the picture's aspect ratio (checked every 0.5 s)
    box = overlay.rect
    css(browser, '.tool[data-mode="line"]')[0].click()
    (x1, y1), (x2, y2) = LINE
    at = lambda fx, fy: (round(fx * box["width"] - box["width"] / 2),  # noqa: E731
                         round(fy * box["height"] - box["height"] / 2))  # fmt: skip
    actions = ActionChains(browser, duration=50)
    actions.move_to_element_with_offset(overlay, *at(x1, y1)).click_and_hold()
    for step in range(1, 6):
        f = step / 5
        actions.move_to_element_with_offset(overlay, *at(x1 + (x2 - x1) * f, y1 + (y2 - y1) * f))
    actions.release().perform()
    assert read(browser, "svg.overlay g.line", "data-name") == ["line1"]
    assert set(read(browser, "svg.overlay text.dir")) == {"in", "out"}
    css(browser, "#save")[0].click()
    wait(browser, lambda d: "Saved" in css(d, "#editor-message")[0].text, "saved")

    saved = tomllib.loads(service.config.read_text())["cameras"]["cars"]
    (fx1, fy1, fx2, fy2) = saved["lines"]["line1"]
    assert saved["source"] == str(CAR)  # the PUT without a source kept it
    for got, want in zip((fx1, fy1, fx2, fy2), (*LINE[0], *LINE[1]), strict=True):
        assert abs(got - want) < 0.02, saved["lines"]

    browser.get(url + "#/events?camera=cars")
    wait(browser, lambda d: css(d, "#events"), "the events page")
    assert not css(browser, '#events li[data-type="line_cross"]')  # none yet: they come live
    wait(browser, lambda d: css(d, '#events li[data-type="line_cross"]'), "a live event", 40)
    first = css(browser, '#events li[data-type="line_cross"] .what')[0].text
    assert "line line1 in" in first, first

    browser.get(url + "#/camera/cars")
    wait(browser, lambda d: "in 2 · out 2" in css(d, "#camera-status")[0].text, "2/2", 45)
    counts = service.streams()["cars"]["counts"]["lines"]["line1"]
    assert (counts["in"], counts["out"]) == (2, 2)
    assert "in 2 · out 2" in css(browser, ".items .counts")[0].text
    shot(browser, "camera")

    browser.get(url + "#/events?camera=cars")
    crossings = '#events li[data-type="line_cross"]'
    wait(browser, lambda d: len(css(d, crossings)) == 4, "the four crossings")
    thumbs = css(browser, '#events li[data-type="track_end"] img.thumb')
    wait(browser, lambda d: all(i.get_property("naturalWidth") > 0 for i in thumbs), "thumbs")
    plays = css(browser, f"{crossings} button.play")
    if not plays:
        pytest.skip("no clip_url on the events (clips not served yet)")
    plays[-1].click()  # the first crossing's clip: finished long ago
    video = css(browser, "#player")[0]
    wait(browser, lambda d: video.get_property("readyState") == 4, "the clip is playable", 20)
    start = video.get_property("currentTime")
    wait(browser, lambda d: video.get_property("currentTime") > start + 0.3, "the clip plays")
    shot(browser, "events")


def test_the_editor_on_a_tablet_by_clicks_and_keys_shows_the_apis_refusal(service, browser):
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 768, "height": 1024, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        browser.get(f"http://127.0.0.1:{service.port}/#/camera/cars")
        wait(browser, lambda d: css(d, "svg.overlay") and css(d, "#save"), "the editor")
        overlay = css(browser, "svg.overlay")[0]
        box = overlay.rect
        assert box["x"] >= 0 and box["x"] + box["width"] <= 768  # no sideways scrolling
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 768
        # keyboard: a zone added and a corner moved with the arrow keys
        [add_zone] = [b for b in css(browser, ".tools button") if b.text == "Add zone"]
        add_zone.click()
        assert active(browser, "data-point") == "0"
        name = css(browser, ".items .item-name")[-1]
        name.clear()
        name.send_keys('<img src=x onerror="document.title=1">')  # shown as text, not HTML
        assert read(browser, "svg.overlay g.zone text.label")[0].startswith("<img src=x")
        assert not css(browser, "main img[src='x']") and browser.title == "vapipe"
        browser.execute_script(  # Tab order: back to it
            "document.querySelector(arguments[0]).focus()",
            'svg.overlay g.zone circle[data-point="0"]',
        )
        assert active(browser, "data-point") == "0"
        before = float(active(browser, "cx"))
        # keys to the focused element as a user types them (ActionChains: no "interactable"
        # check of chromedriver's, which an SVG circle near the picture's edge may fail)
        ActionChains(browser).send_keys("\ue014" * 5).perform()  # ArrowRight
        after = float(active(browser, "cx"))
        assert after - before == pytest.approx(0.05 * box["width"], abs=1)
        assert active(browser, "data-point") == "0"
        ActionChains(browser).send_keys("\ue017").perform()  # Delete: the zone goes
        wait(browser, lambda d: not css(d, "svg.overlay g.zone"), "the zone deleted")
        # clicks: a self-crossing zone (a bow tie), closed with Enter; the API refuses it
        css(browser, '.tool[data-mode="zone"]')[0].click()
        actions = ActionChains(browser, duration=50)
        for fx, fy in ((0.2, 0.2), (0.8, 0.8), (0.8, 0.2), (0.2, 0.8)):
            x = round(fx * box["width"] - box["width"] / 2)
            y = round(fy * box["height"] - box["height"] / 2)
            actions.move_to_element_with_offset(overlay, x, y).click()
        actions.send_keys("\ue007").perform()  # Enter
        assert read(browser, "svg.overlay g.zone", "data-name") == ["zone1"]
        css(browser, "#save")[0].click()
        wait(browser, lambda d: "error" in css(d, "#editor-message")[0].get_attribute("class"), "")
        message = css(browser, "#editor-message")[0].text
        assert "zone1" in message and "cross" in message, message
        browser.execute_script(
            "arguments[0].scrollIntoView(false)", css(browser, "#editor-message")[0]
        )
        shot(browser, "editor-tablet")
        saved = tomllib.loads(service.config.read_text())["cameras"]["cars"]
        assert "zones" not in saved
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_camera_is_added_and_removed_from_the_page(service, browser):
    url = f"http://127.0.0.1:{service.port}/"
    browser.get(url + "#/add")
    wait(browser, lambda d: css(d, "#add #new-name"), "the form")
    css(browser, "#new-name")[0].send_keys("spare")
    css(browser, "#new-source")[0].send_keys("rtsp://127.0.0.1:9/nothing")
    css(browser, "#new-class option[value='batch']")[0].click()
    shot(browser, "add")
    css(browser, "#add button[type='submit']")[0].click()
    wait(browser, lambda d: d.current_url.endswith("#/camera/spare") and css(d, "#remove"), "")
    saved = tomllib.loads(service.config.read_text())["cameras"]
    assert saved["spare"]["source"] == "rtsp://127.0.0.1:9/nothing"
    assert saved["spare"]["class"] == "batch"
    browser.get(url + "#/add")
    wait(browser, lambda d: css(d, "#add #new-name"), "the form")
    css(browser, "#new-name")[0].send_keys("spare")
    css(browser, "#new-source")[0].send_keys("rtsp://127.0.0.1:9/again\n")
    wait(browser, lambda d: "error" in css(d, "#add-message")[0].get_attribute("class"), "")
    assert "spare" in css(browser, "#add-message")[0].text  # the API's message: a duplicate
    browser.get(url + "#/camera/spare")
    wait(browser, lambda d: css(d, "#remove"), "the camera page")
    css(browser, "#remove")[0].click()
    browser.switch_to.alert.accept()
    wait(browser, lambda d: d.current_url.endswith("#/") and css(d, "#cameras .camera"), "")
    wait(browser, lambda d: not css(d, '#cameras [data-camera="spare"]'), "the card goes")
    assert "spare" not in tomllib.loads(service.config.read_text())["cameras"]


def test_the_web_app_ships_in_the_package():
    web = Path(__file__).resolve().parents[1] / "pipeline" / "apps" / "serve" / "web"
    assert {p.name for p in web.rglob("*.*")} >= {"index.html", "app.js", "editor.js", "app.css"}
    text = (ROOT / "pyproject.toml").read_text()
    assert '"web/js/*.js"' in text and '"web/css/*.css"' in text and '"web/*.html"' in text
