from __future__ import annotations

import logging

from huey.contrib.djhuey import db_task

from alerts.mail import send_alert
from alerts.service import evaluate_study

log = logging.getLogger(__name__)


@db_task()
def evaluate_study_task(study_id: int) -> int:
    """Evaluate the rules for an imported study, then e-mail each new alert's recipients."""
    new = evaluate_study(study_id)
    for alert in new:
        send_alert(alert)
    return len(new)
