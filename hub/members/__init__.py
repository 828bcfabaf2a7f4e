"""Member lists in and out: the pure part of import and export (no I/O, no store).

``read_members_csv`` (bytes → ``ImportFile`` of ``ImportRow``), ``plan_import`` (rows + the
entity's existing keys → ``ImportPlan``), ``write_members_csv`` (members → bytes);
``parse_phone`` and ``parse_email`` for single values (API bodies).
"""

from hub.members.columns import Column, Field
from hub.members.csvin import ImportFile, ImportRow, read_members_csv
from hub.members.csvout import write_members_csv
from hub.members.emails import parse_email
from hub.members.phones import parse_phone
from hub.members.plan import Action, ImportPlan, RowReport, lookup_keys, plan_import

__all__ = [
    "Action",
    "Column",
    "Field",
    "ImportFile",
    "ImportPlan",
    "ImportRow",
    "RowReport",
    "lookup_keys",
    "parse_email",
    "parse_phone",
    "plan_import",
    "read_members_csv",
    "write_members_csv",
]
