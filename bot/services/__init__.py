"""The use cases: each takes a unit of work and the acting contact, authorizes, writes, audits."""
