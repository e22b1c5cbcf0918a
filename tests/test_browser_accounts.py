"""Headless Chromium: the admin logs in, changes the password from the account menu, adds a
viewer on the Users page; the viewer logs in and gets the styled 403 on an admin page; a
locked user name gets the login page with the reason. Screenshots in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from doseport.auth import ADMIN, VIEWER, role_of, set_role
from tests.conftest import fill

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
WAIT_S = 15
FIRST = "first-run-Password-0001"
CHANGED = "violet-compass-river-58"


def log_in(driver: WebDriver, url: str, username: str, password: str) -> None:
    driver.get(url + "/login/")
    fill(driver, {"username": username, "password": password})
    driver.find_element(By.ID, "login-submit").click()


def open_account_menu(driver: WebDriver) -> None:
    menu = driver.find_element(By.ID, "account-menu")
    if menu.get_attribute("open") is None:
        menu.find_element(By.TAG_NAME, "summary").click()


def test_it_runs_the_account_story_end_to_end(
    driver: WebDriver, live_server: Any, django_user_model: Any, artifacts: Path
) -> None:
    admin = django_user_model.objects.create_user("admin", password=FIRST)
    set_role(admin, ADMIN)
    # a submit reloads the page: an element found just before may go stale while read
    wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))

    log_in(driver, live_server.url, "admin", FIRST)
    wait.until(lambda d: d.find_elements(By.ID, "account-menu"))
    open_account_menu(driver)
    wait.until(lambda d: d.find_element(By.ID, "nav-password").is_displayed())
    driver.save_screenshot(str(artifacts / "accounts_menu.png"))
    driver.find_element(By.ID, "nav-password").click()
    wait.until(lambda d: d.find_elements(By.ID, "password-form"))
    fill(driver, {"old_password": FIRST, "new_password1": "12345678",
                  "new_password2": "12345678"})
    driver.find_element(By.ID, "save-password").click()
    wait.until(lambda d: "too short" in d.find_element(By.ID, "password-form").text)
    driver.save_screenshot(str(artifacts / "accounts_password_refused.png"))
    fill(driver, {"old_password": FIRST, "new_password1": CHANGED, "new_password2": CHANGED})
    driver.find_element(By.ID, "save-password").click()
    wait.until(lambda d: "password has been changed" in d.find_element(By.CLASS_NAME,
                                                                        "messages").text)
    admin.refresh_from_db()
    assert admin.check_password(CHANGED)

    open_account_menu(driver)
    driver.find_element(By.ID, "nav-users").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "h1").text == "Users")
    driver.find_element(By.ID, "add-user").click()
    wait.until(lambda d: d.find_elements(By.ID, "user-form"))
    fill(driver, {"username": "vera"})
    Select(driver.find_element(By.ID, "id_role")).select_by_value(VIEWER)
    driver.find_element(By.ID, "save-user").click()
    wait.until(lambda d: d.find_elements(By.ID, "new-password"))
    password = driver.find_element(By.ID, "new-password").text
    driver.save_screenshot(str(artifacts / "accounts_user_added.png"))
    vera = django_user_model.objects.get(username="vera")
    assert vera.check_password(password) and role_of(vera) == VIEWER
    driver.find_element(By.ID, "back-to-users").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#user-{vera.pk}"))
    assert "viewer" in driver.find_element(By.ID, f"user-{vera.pk}").text
    driver.save_screenshot(str(artifacts / "accounts_users.png"))

    open_account_menu(driver)
    driver.find_element(By.ID, "nav-logout").click()
    wait.until(lambda d: d.find_elements(By.ID, "login-submit"))
    log_in(driver, live_server.url, "vera", password)
    wait.until(lambda d: d.find_elements(By.ID, "account-menu"))
    assert not driver.find_elements(By.ID, "nav-users")
    driver.get(live_server.url + "/config/dicom/store/add/")
    wait.until(lambda d: d.find_elements(By.ID, "error-403"))
    reason = driver.find_element(By.ID, "denied-reason").text
    assert reason.startswith("Your role, viewer, cannot change the configuration")
    assert driver.find_element(By.LINK_TEXT, "Studies").is_displayed()
    driver.save_screenshot(str(artifacts / "accounts_403.png"))

    open_account_menu(driver)
    driver.find_element(By.ID, "nav-logout").click()
    wait.until(lambda d: d.find_elements(By.ID, "login-submit"))
    AccessAttempt.objects.create(
        username="vera", ip_address="10.1.2.3", user_agent="elsewhere", get_data="",
        post_data="", http_accept="", path_info="/login/",
        failures_since_start=settings.AXES_FAILURE_LIMIT,
    )
    log_in(driver, live_server.url, "vera", password)
    wait.until(lambda d: d.find_elements(By.ID, "login-locked"))
    assert "Too many failed logins" in driver.find_element(By.ID, "login-locked").text
    driver.save_screenshot(str(artifacts / "accounts_login_locked.png"))
