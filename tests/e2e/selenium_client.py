#!/usr/bin/python3
"""A Selenium (Python, Debian's python3-selenium) session against browserd's WebDriver endpoint,
driven by webdriver.test.js, which checks the record it leaves.

Usage: selenium_client.py REMOTE_URL SITE_ORIGIN
Prints one JSON object of what the client saw; exits non-zero on any failure."""
import base64
import json
import sys

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def main():
    remote, origin = sys.argv[1], sys.argv[2]
    seen = {}
    d = webdriver.Remote(command_executor=remote, options=webdriver.ChromeOptions())
    try:
        seen["session_id"] = d.session_id
        d.get(origin + "/p/1")
        seen["title1"] = d.title
        d.find_element(By.ID, "next").click()
        WebDriverWait(d, 10).until(EC.title_is("two"))
        field = d.find_element(By.ID, "q")
        field.clear()
        field.send_keys("from python")
        d.find_element(By.ID, "send").click()
        WebDriverWait(d, 10).until(EC.title_is("submitted"))
        seen["submitted"] = d.find_element(By.ID, "got").text
        seen["script"] = d.execute_script("return document.title + ':' + (arguments[0] + 1)", 41)
        png = base64.b64decode(d.get_screenshot_as_base64())
        seen["png_signature"] = png[:8].hex()
        seen["png_bytes"] = len(png)
        d.add_cookie({"name": "flavour", "value": "oat"})
        seen["cookie"] = d.get_cookie("flavour")["value"]
        d.delete_cookie("flavour")
        seen["cookie_after_delete"] = d.get_cookie("flavour")
        first = d.current_window_handle
        d.switch_to.new_window("tab")
        d.get(origin + "/p/3")
        seen["windows"] = len(d.window_handles)
        seen["title3"] = d.title
        d.switch_to.window(first)
        seen["back_in_first"] = d.title
        # browserd's own CDP commands through chromedriver's CDP passthrough
        d.command_executor._commands["cdp"] = ("POST", "/session/$sessionId/goog/cdp/execute")
        seen["cdp_session_id"] = d.execute("cdp", {"cmd": "Browser.getSessionId", "params": {}})["value"]["sessionId"]
        seen["live_url"] = d.execute("cdp", {"cmd": "Page.inspect", "params": {}})["value"]["url"]
    finally:
        d.quit()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
