"""GIVEN the demo's data on an embedded stack, WHEN a person opens the console in Chromium and
enters the read API key, THEN the segments, a segment's members (and their CSV), a customer's
explanation, the experiment's results and the erasure's confirmation all work, with no error
in the browser's console (the ``tab`` fixture checks it after every test)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

from playwright.sync_api import expect

from embedded.stack import LOCAL_API_KEY
from tests.browser.conftest import Console, Site


def api_status(console: str, path: str) -> int:
    request = urllib.request.Request(console.removesuffix("/console") + path, headers={"x-api-key": LOCAL_API_KEY})
    try:
        with urllib.request.urlopen(request) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_the_segments_page_shows_the_model_its_segments_and_charts_and_keeps_the_key_in_the_session(
    tab: Console,
) -> None:
    tab.sign_in()
    page = tab.page
    expect(page.get_by_role("heading", name="Learned segments")).to_be_visible()
    expect(page.get_by_role("heading", name="Tiers (trigger rules)")).to_be_visible()
    expect(page.get_by_text("model in force")).to_be_visible()
    assert page.get_by_role("img", name=re.compile("Customers per learned segment")).count() == 1
    assert page.evaluate("sessionStorage.getItem('audience-engine-api-key')") == LOCAL_API_KEY
    assert page.evaluate("localStorage.length") == 0
    for name in ("", "/app.js", "/style.css"):  # the served files hold no key
        assert LOCAL_API_KEY not in page.request.get(tab.url + name).text()
    tab.screenshot("segments")

    with page.context.expect_page() as opened:
        page.get_by_role("button", name="Open the model's report").click()
    report = opened.value
    report.wait_for_load_state()
    expect(report.get_by_role("heading", name=re.compile("Segmentation model"))).to_be_visible()


def test_a_segment_lists_its_members_pages_them_and_downloads_them_as_csv(tab: Console) -> None:
    tab.sign_in()
    page = tab.page
    learned = page.locator("table").first.locator("tbody a").first
    name = learned.inner_text()
    learned.click()
    expect(page.get_by_role("heading", name=re.compile(re.escape(name)))).to_be_visible()
    expect(page.get_by_text("Key figures")).to_be_visible()
    expect(page.get_by_text("ordered in the last 30 days")).to_be_visible()  # the demo's measure job ran
    members = page.locator("main ul li a")
    expect(members.first).to_be_visible()
    first = members.first.inner_text()
    tab.screenshot("segment")
    with page.expect_download() as downloaded:
        page.get_by_role("button", name="Download members (CSV)").click()
    lines = Path(downloaded.value.path()).read_text().splitlines()
    assert lines[0] == "customerId" and first in lines[1:]
    size = int(re.search(r"Members \(([\d,]+)", page.get_by_role("heading", name=re.compile("^Members")).inner_text())
               .group(1).replace(",", ""))  # type: ignore[union-attr]  # fmt: skip
    assert len(lines) - 1 == size
    members.first.click()
    expect(page.get_by_role("heading", name=f"Customer {first}")).to_be_visible()


def test_a_customer_search_shows_the_profile_and_the_explanation(tab: Console) -> None:
    tab.sign_in()
    page = tab.page
    page.get_by_label("Customer id").fill("shop-0001")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Customer shop-0001")).to_be_visible()
    expect(page.get_by_role("heading", name="Why this segment")).to_be_visible()
    expect(page.get_by_text(re.compile(r"puts shop-0001 in .+ \(RFM \d-\d-\d"))).to_be_visible()
    expect(page.get_by_text("The customer's features")).to_be_visible()
    expect(page.get_by_text("Every trigger rule")).to_be_visible()
    assert page.get_by_role("img", name=re.compile("Distance to each segment")).count() == 1
    expect(page.get_by_role("heading", name="Recommended products")).to_be_visible()
    tab.screenshot("customer")

    page.get_by_label("marketing").uncheck()
    expect(page.get_by_role("status")).to_have_text("Consent to marketing refused for shop-0001.")
    with page.expect_download() as downloaded:
        page.get_by_role("button", name="Export everything held (JSON)").click()
    exported = json.loads(Path(downloaded.value.path()).read_text())
    assert exported["customerId"] == "shop-0001" and exported["profile"]["consent"]["marketing"][0] is False


def test_an_erasure_asks_for_confirmation_and_cancel_keeps_the_customer(tab: Console) -> None:
    tab.sign_in()
    page = tab.page
    page.goto(f"{tab.url}#/customer/shop-0002")
    page.get_by_role("button", name="Erase this customer…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("cannot be undone")
    tab.screenshot("erasure")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("status")).to_have_text("Erasure cancelled.")
    assert api_status(tab.url, "/v1/customers/shop-0002") == 200

    page.get_by_role("button", name="Erase this customer…").click()
    page.get_by_role("dialog").get_by_role("button", name="Erase").click()
    expect(page.get_by_role("status")).to_contain_text("Erased shop-0002: receipt")
    assert api_status(tab.url, "/v1/customers/shop-0002") == 404


def test_the_experiment_shows_each_variant_with_intervals_and_the_sample_ratio_check(tab: Console) -> None:
    tab.sign_in()
    page = tab.page
    page.get_by_role("link", name="Experiments").click()
    expect(page.get_by_text("Global holdout")).to_be_visible()
    tab.screenshot("experiments")
    page.get_by_role("link", name="demo-offer").click()
    expect(page.get_by_role("heading", name="Experiment demo-offer")).to_be_visible()
    expect(page.get_by_text(re.compile("Sample ratio (as configured|mismatch)"))).to_be_visible()
    expect(page.get_by_text(re.compile("^Decision: (Keep running|Ship the winner|Stop)"))).to_be_visible()
    expect(page.get_by_text(re.compile("^Read the (always-valid|fixed-horizon) figures"))).to_be_visible()
    expect(page.get_by_role("img", name="Conversion per variant (95% interval)")).to_be_visible()
    expect(page.get_by_role("img", name="Revenue per exposed customer (95% interval)")).to_be_visible()
    offer = page.locator("table").first.locator("tr", has_text="offer")
    expect(offer).to_contain_text(re.compile(r"pts \[-?[\d.]+, -?[\d.]+\], p = "))
    tab.screenshot("experiment")


def test_the_console_works_from_the_keyboard_with_labelled_controls(tab: Console) -> None:
    page = tab.page
    page.goto(tab.url)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    tab.sign_in()
    expect(page.get_by_role("heading", name="Learned segments")).to_be_visible()
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select, button')]
        .filter(e => !e.closest('[hidden]') && !(e.labels && e.labels.length) && !e.textContent.trim()
                     && !e.getAttribute('aria-label')).length""")
    assert unlabelled == 0
    page.get_by_label("Customer id").focus()
    page.keyboard.type("shop-0003")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Customer shop-0003")).to_be_visible()


def test_on_an_empty_stack_every_page_says_what_is_missing_without_an_error(site: Site) -> None:
    """`make local DEMO=0`: no model, no experiment, no customer yet (the stack as it started)."""
    assert "No segmentation model yet" in site.empty["segments"]
    assert "Tiers (trigger rules)" in site.empty["segments"]  # the default rules' tiers, empty
    assert "No experiments configured" in site.empty["experiments"]
    assert site.empty_errors == []
