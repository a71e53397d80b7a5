"""The faceindex web UI: static files that talk only to the REST API.

Web UI
======

A small single-page app in plain HTML, CSS and JavaScript modules, with no build step, no
framework and nothing fetched from outside the server: fonts are the system's, every
script, style and icon is served from :func:`static_dir`. The API app
(``faceindex.api.app.create_app``) serves this folder at ``/`` (``index.html`` at ``/``)
and the UI calls the versioned JSON API under ``v1/`` relative to the page, so it also
works behind a reverse proxy that mounts the server under a sub-path.

Start it with::

    faceindex serve --gallery GALLERY --port 8000          # then open http://localhost:8000/
    faceindex serve --gallery GALLERY --port 8000 --no-auth # local use, no API key

Pages (hash routing, so the server needs no route per page):

``#/people``
    The enrolled people, searchable by name and paged; ``#/people/ID`` shows one person
    with their enrolled faces (thumbnails when the server keeps photos, a placeholder
    otherwise), renames them, removes a face, or deletes the person after a confirmation
    dialog (full erasure).
``#/enrol``
    Several photos by drag and drop or the file picker, for a new person (a name) or one
    already enrolled (``#/enrol?person=ID`` preselects them); each photo comes back
    accepted, rejected or already enrolled, with the reasons in plain words. A new person
    none of whose photos is accepted is not kept.
``#/recognise``
    One photo, uploaded or taken with the browser camera (``getUserMedia``, offered only
    where the browser allows it: HTTPS or localhost); boxes are drawn on a canvas over
    the photo with each name and similarity, or "unknown".
``#/verify``
    Two photos side by side: same person or not, the similarity and the threshold.

API key: when the server requires one, the UI asks for it in a settings dialog (the key
button in the header) and keeps it in the browser's ``localStorage``; it is sent as
``Authorization: Bearer KEY``. A 401 or 403 answer opens the dialog again. With
``--no-auth`` (``GET /v1/health`` says ``"auth": false``) no key is needed.

Accessibility: real buttons, links and labels, visible focus, results announced through
``aria-live`` regions, every box of the canvas also listed as text, and a layout that
fits a phone. The UI is tested in headless Chromium by ``tests/browser/test_web_ui.py``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["static_dir"]


def static_dir() -> Path:
    """The folder of the UI's static files (``index.html`` and its assets)."""
    return Path(__file__).resolve().parent / "static"
