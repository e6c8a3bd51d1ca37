"""Sending finance an e-mail through Airflow's ``SmtpNotifier`` (Connection ``innen_finance_mail``).

Like :mod:`include.airflow_roles`, this module talks to Airflow and imports it only inside its functions. What a
mail says is built by the pure functions of :mod:`include.notifications`; this only sends it. No Connection, or
one without an extra ``to``: nothing is sent and the caller is told so (a mail is a courtesy, never a reason for
a task to fail).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from include.notifications import FINANCE_MAIL_CONN_ID, approval_mail, recipients, required_actions_url

log = logging.getLogger(__name__)


def send_to_finance(context: Mapping[str, Any], subject: str, html: str) -> bool:
    """Mail ``subject``/``html`` to finance; False when no Connection (or no address) says where."""
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        connection = Connection.get(FINANCE_MAIL_CONN_ID)
    except AirflowNotFoundException:
        log.info("no Connection %s: finance is not mailed (%s)", FINANCE_MAIL_CONN_ID, subject)
        return False
    to = recipients(connection.extra_dejson)
    if not to:
        log.warning("Connection %s has no extra 'to': finance is not mailed (%s)", FINANCE_MAIL_CONN_ID, subject)
        return False
    SmtpNotifier(smtp_conn_id=FINANCE_MAIL_CONN_ID, to=to, subject=subject, html_content=html).notify(context)
    log.info("mailed finance: %s", subject)
    return True


def base_url() -> str:
    """The UI's address for links in mails (``[api] base_url``)."""
    from airflow.sdk import conf

    return (conf.get("api", "base_url", fallback=None) or "http://localhost:8080").rstrip("/")


def approval_waiting_mail(context: Mapping[str, Any], staged: Mapping[str, Any]) -> bool:
    """Tell finance a bank file waits for approval, with a link to the task's *Required actions* page."""
    ti = context["ti"]
    url = required_actions_url(base_url(), ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
    subject, html = approval_mail(staged, url)
    return send_to_finance(context, subject, html)
