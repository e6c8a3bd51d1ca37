"""POM accounts from ``AIRFLOW_CONN_POM_*`` values: a malformed one is refused without echoing its secret."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from include.errors import ConfigError
from include.pom.accounts import account_from_connection_json, accounts_from_env

EXTRA = {"env": "prod", "sender_id": "S1", "sender_contract_number": "C1", "callback_secret": "cb-secret"}


def _uri(password: str) -> str:
    return f"http://bib:{password}@127.0.0.1:8077/http?__extra__={quote(json.dumps(EXTRA))}"


def test_uri_form_with_a_percent_encoded_password_is_read() -> None:
    account = account_from_connection_json("gemeente", _uri(quote("S3cr/et?x#y", safe="")))
    assert (account.base_url, account.username, account.password) == ("http://127.0.0.1:8077", "bib", "S3cr/et?x#y")


@pytest.mark.parametrize("password", ["S3cr/etPart", "S3cr?etPart", "S3cr#etPart", "99999/etPart"])
def test_uri_form_with_an_unencoded_special_character_is_refused_without_echoing_the_password(password: str) -> None:
    with pytest.raises(ConfigError) as refused:
        accounts_from_env(environ={"AIRFLOW_CONN_POM_GEMEENTE": _uri(password)})
    message = str(refused.value)
    assert "pom_gemeente" in message and "percent-encode" in message
    assert "S3cr" not in message and "etPart" not in message and "99999" not in message
    # Nor in what a traceback would print: the urllib error is not chained.
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
