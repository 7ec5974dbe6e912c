"""The staff console: web pages at /console where commune and province staff see, review and act
on their area (issue 12). An adapter like the chat channels: it reads the request, calls the same
services with the staff member's Actor, and renders server-side HTML (Jinja2, no build step,
nothing from a CDN). Logging in is from the chat (/web); see auth.py.
"""
