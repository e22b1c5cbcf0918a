"""Each validation rule of the node forms, with good and bad values."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from nodes.forms import DeleteSettingsForm, RemoteNodeForm, StoreNodeForm
from nodes.models import DeleteSettings, RemoteNode, StoreNode

pytestmark = pytest.mark.django_db


def store_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Main store", "ae_title": "DOSEPORT", "port": 11112, "bind_address": "",
        "controlled": "on", "allowed_calling_aets": "", "host": "",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def remote_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "PACS", "ae_title": "PACS_AE", "host": "pacs.example.org", "port": 104,
        "calling_ae_title": "DOSEPORT", "retrieve_method": "move", "connect_timeout": 5,
        "acse_timeout": 10, "dimse_timeout": 60, "network_timeout": 120,
    }
    data.update(changes)
    return data


def store_errors(**changes: Any) -> dict[str, list[str]]:
    form = StoreNodeForm(store_data(**changes))
    form.is_valid()
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


def remote_errors(**changes: Any) -> dict[str, list[str]]:
    form = RemoteNodeForm(remote_data(**changes))
    form.is_valid()
    return {name: [str(e) for e in errors] for name, errors in form.errors.items()}


@pytest.mark.parametrize("aet", ["DOSEPORT", "A", "STORE1", "ABCDEFGHIJKLMNOP", "lower1"])
def test_it_accepts_store_ae_titles_of_letters_and_digits(aet: str) -> None:
    assert store_errors(ae_title=aet) == {}


@pytest.mark.parametrize(
    ("aet", "words"),
    [
        ("DOSE PORT", "letters A-Z and digits"),
        ("DOSE_PORT", "letters A-Z and digits"),
        ("DOSÉ", "letters A-Z and digits"),
        ("ABCDEFGHIJKLMNOPQ", "at most 16"),
        ("", "required"),
    ],
)
def test_it_rejects_bad_store_ae_titles_naming_the_fix(aet: str, words: str) -> None:
    errors = store_errors(ae_title=aet)
    assert list(errors) == ["ae_title"]
    assert words in errors["ae_title"][0]


@pytest.mark.parametrize("aet", ["PACS_AE", "PACS-1", "My Pacs", "A.B*C", "X"])
def test_it_accepts_remote_ae_titles_in_the_default_repertoire(aet: str) -> None:
    assert remote_errors(ae_title=aet) == {}


@pytest.mark.parametrize(
    ("aet", "words"),
    [
        ("PACS\\AE", "backslash"),
        ("PACS\tAE", "printable ASCII"),
        ("PACSÄ", "printable ASCII"),
        ("PACS\x01", "printable ASCII"),
        ("0123456789ABCDEFG", "at most 16"),
    ],
)
def test_it_rejects_bad_remote_ae_titles(aet: str, words: str) -> None:
    errors = remote_errors(ae_title=aet)
    assert list(errors) == ["ae_title"]
    assert words in errors["ae_title"][0]


def test_it_rejects_leading_and_trailing_spaces_in_remote_ae_titles() -> None:
    # Django strips form input, so the model (used by the CLI too) is where this rule bites.
    node = RemoteNode(name="P", ae_title=" PACS", host="pacs", port=104)
    with pytest.raises(Exception, match="start or end with a space"):
        node.full_clean()
    node.ae_title = "PACS "
    with pytest.raises(Exception, match="start or end with a space"):
        node.full_clean()
    node.ae_title = "PA CS"
    node.full_clean()


def test_it_rejects_a_bad_calling_ae_title() -> None:
    errors = remote_errors(calling_ae_title="OUR\\AET")
    assert "backslash" in errors["calling_ae_title"][0]


@pytest.mark.parametrize(
    "host", ["pacs", "pacs.example.org", "10.1.2.3", "::1", "pacs-01.hospital.local", "a" * 63]
)
def test_it_accepts_host_names_and_addresses(host: str) -> None:
    assert remote_errors(host=host) == {}


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("", "required"),
        ("pacs_01", "neither an IP address nor a valid hostname"),
        ("-pacs", "neither an IP address nor a valid hostname"),
        ("pacs..local", "neither an IP address nor a valid hostname"),
        ("a" * 64, "neither an IP address nor a valid hostname"),
        ("has space", "neither an IP address nor a valid hostname"),
    ],
)
def test_it_rejects_bad_hosts(host: str, words: str) -> None:
    errors = remote_errors(host=host)
    assert words in errors["host"][0]


def test_it_rejects_hosts_longer_than_253_characters() -> None:
    node = RemoteNode(name="P", ae_title="PACS", host=".".join(["a" * 50] * 6), port=104)
    with pytest.raises(Exception, match="at most 253"):
        node.full_clean()


@pytest.mark.parametrize("port", [1, 104, 1024, 11112, 65535])
def test_it_accepts_ports_in_range(port: int) -> None:
    assert store_errors(port=port) == {}
    assert remote_errors(port=port) == {}


@pytest.mark.parametrize("port", [0, 65536, 100000])
def test_it_rejects_ports_out_of_range(port: int) -> None:
    assert "use 1-65535" in store_errors(port=port)["port"][0]
    assert "use 1-65535" in remote_errors(port=port)["port"][0]


def test_it_rejects_a_non_numeric_port() -> None:
    assert "port" in store_errors(port="eleven")


def test_it_accepts_a_privileged_port_with_a_warning() -> None:
    form = StoreNodeForm(store_data(port=104))
    assert form.is_valid(), form.errors
    assert "below 1024" in form.port_warning
    assert "CAP_NET_BIND_SERVICE" in form.port_warning
    high = StoreNodeForm(store_data(port=11112))
    assert high.is_valid() and high.port_warning == ""


def test_it_mentions_firewalls_in_the_port_help_text() -> None:
    assert "firewall" in str(StoreNodeForm().fields["port"].help_text)
    assert "firewall" in str(RemoteNodeForm().fields["port"].help_text)


def test_it_accepts_lists_of_allowed_calling_ae_titles() -> None:
    assert store_errors(allowed_calling_aets="") == {}
    form = StoreNodeForm(store_data(allowed_calling_aets="CT1, CT2\nMG_ROOM"))
    assert form.is_valid(), form.errors
    node = form.save()
    assert node.allowed_calling_aet_list == ["CT1", "CT2", "MG_ROOM"]


def test_it_rejects_bad_allowed_calling_ae_titles_naming_the_bad_one() -> None:
    errors = store_errors(allowed_calling_aets="CT1, BAD\\AET")
    assert "'BAD\\\\AET'" in errors["allowed_calling_aets"][0]
    assert "backslash" in errors["allowed_calling_aets"][0]
    errors = store_errors(allowed_calling_aets="TOOLONGAETITLE1234")
    assert "at most 16" in errors["allowed_calling_aets"][0]


def test_it_rejects_a_bad_bind_address() -> None:
    assert "not an IP address" in store_errors(bind_address="eth0")["bind_address"][0]
    assert store_errors(bind_address="0.0.0.0") == {}
    assert store_errors(bind_address="127.0.0.1") == {}


def test_it_requires_unique_store_names() -> None:
    StoreNode.objects.create(name="Main store", ae_title="ONE", port=11112)
    errors = store_errors(name="Main store", port=11113)
    assert "already has this name" in errors["name"][0]
    assert store_errors(name="Other store", port=11113) == {}


def test_it_requires_unique_remote_names() -> None:
    RemoteNode.objects.create(name="PACS", ae_title="PACS", host="pacs", port=104)
    assert "already has this name" in remote_errors(name="PACS")["name"][0]
    assert remote_errors(name="PACS 2") == {}


def test_it_refuses_two_controlled_store_nodes_on_one_port() -> None:
    StoreNode.objects.create(name="First", ae_title="ONE", port=11112)
    errors = store_errors(name="Second", port=11112)
    assert "already listens on this port" in str(errors)
    # A third-party store (not controlled) may share a port number with ours.
    assert store_errors(name="Second", port=11112, controlled=None, host="pacs") == {}


def test_it_lets_an_edited_node_keep_its_own_name_and_port() -> None:
    node = StoreNode.objects.create(name="Main store", ae_title="ONE", port=11112)
    form = StoreNodeForm(store_data(ae_title="TWO"), instance=node)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("connect_timeout", 0, "Connect timeout must be at least 1 second"),
        ("connect_timeout", 61, "Connect timeout must be at most 60"),
        ("acse_timeout", 0, "Association timeout must be at least 1"),
        ("dimse_timeout", 3601, "Response timeout must be at most 3600"),
        ("network_timeout", 0, "Network timeout must be at least 1"),
    ],
)
def test_it_bounds_remote_timeouts(field: str, value: int, words: str) -> None:
    assert words in remote_errors(**{field: value})[field][0]


@override_settings(AE_TITLE="SITEAET")
def test_it_defaults_the_calling_ae_title_to_the_site_ae_title() -> None:
    form = RemoteNodeForm()
    assert form.fields["calling_ae_title"].initial == "SITEAET"
    node = RemoteNode.objects.create(name="P", ae_title="PACS", host="pacs", port=104)
    assert node.effective_calling_aet == "SITEAET"
    assert RemoteNodeForm(instance=node).initial["calling_ae_title"] == ""


def test_it_saves_delete_settings_in_one_row() -> None:
    form = DeleteSettingsForm({"del_rdsr": "on"}, instance=DeleteSettings.get())
    assert form.is_valid()
    form.save()
    assert DeleteSettings.objects.count() == 1
    settings_row = DeleteSettings.get()
    assert settings_row.del_rdsr and not settings_row.del_no_match
    assert all(f.help_text for f in DeleteSettingsForm().visible_fields())
