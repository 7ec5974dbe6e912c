"""Compiled reports: the read-side queries (aggregate), targets, renderings (.xlsx, PNG, CSV),
the service that authorises and compiles, and the jobs that send digests and reports.

The constants below are here, light to import, for the menu and help of the dialogues.
"""

from storage.models import COMMUNE, DISTRICT, PROVINCE

# Of which kinds of unit compiled reports are made (who may have them: bot.domain.permissions,
# Action.COMPILE_REPORT): a village's own figures are its report, not a compilation.
SUMMARY_KINDS = (PROVINCE, DISTRICT, COMMUNE)
