"""Compiled reports: the read-side queries (aggregate), targets, renderings (.xlsx, PNG, CSV),
the service that authorises and compiles, and the jobs that send digests and reports.

The constants below are here, light to import, for the menu and help of the dialogues.
"""

from storage.models import ADMIN, COMMUNE, COMMUNE_OFFICER, DISTRICT, PROVINCE, PROVINCE_STAFF

# Who may have compiled reports (inside the subtree of the unit the role is held on) and of which
# kinds of unit: a village's own figures are its report, not a compilation.
SUMMARY_ROLES = (COMMUNE_OFFICER, PROVINCE_STAFF, ADMIN)
SUMMARY_KINDS = (PROVINCE, DISTRICT, COMMUNE)
