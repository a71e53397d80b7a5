"""The security headers every response carries (no FastAPI import: plain data).

- ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no page may frame the UI
  (clickjacking);
- a ``Content-Security-Policy`` of ``default-src 'self'`` for the UI (the same policy as the
  page's own ``<meta>`` tag), relaxed for Swagger UI at ``/docs`` (served only with
  ``--docs``), whose page loads its scripts from a public CDN;
- ``X-Content-Type-Options: nosniff``: a browser never guesses a type from the bytes;
- ``Referrer-Policy: no-referrer``: URLs of the UI are never sent elsewhere.
"""

from __future__ import annotations

#: The web UI's policy (keep in step with the ``<meta>`` tag of ``web/static/index.html``).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

#: Swagger UI's page (FastAPI's ``/docs``): scripts and styles from jsDelivr, an inline
#: start-up script, FastAPI's favicon.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; connect-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")

_COMMON = (
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
)


def security_headers(path: str = "") -> dict[str, str]:
    """The headers for a response to ``path`` (lower-case names)."""
    csp = DOCS_CONTENT_SECURITY_POLICY if path in DOCS_PATHS else CONTENT_SECURITY_POLICY
    return {**dict(_COMMON), "content-security-policy": csp}
