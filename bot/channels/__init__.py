"""Channel adapters: each translates a platform's payloads into `Incoming` messages and the
service's `Reply` objects back into the platform's own form. Nothing else (DESIGN.md, boundary 2).
"""
