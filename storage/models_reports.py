"""Tables added for the reports work. Import Base from storage.models; storage.schema imports this module."""

from __future__ import annotations
