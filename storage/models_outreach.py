"""Tables added for the outreach work. Import Base from storage.models; storage.schema imports this module."""

from __future__ import annotations
