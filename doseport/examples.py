"""How to send Doseport its first object: the commands empty pages show."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest

from nodes.models import StoreNode


@dataclass(frozen=True)
class SendExample:
    """A DCMTK storescu line for the first store node (or the defaults) and the file import."""

    storescu: str
    node: StoreNode | None
    import_command: str = "doseport import --keep report.dcm"


def send_example(request: HttpRequest) -> SendExample:
    node = StoreNode.objects.filter(controlled=True).order_by("pk").first()
    host = (node.bind_address if node and node.bind_address not in ("", "0.0.0.0", "::")
            else request.get_host().rsplit(":", 1)[0].strip("[]"))
    port = node.port if node else 11112
    aet = node.ae_title if node else "DOSEPORT"
    # -R proposes only the SOP classes of the files: without it storescu offers its built-in
    # list, which may leave out the dose SR classes (the send is then refused).
    return SendExample(storescu=f"storescu -R -aec {aet} {host} {port} report.dcm", node=node)
