"""A stand-in for the REST API with fixed answers, for working on the web UI alone.

It implements the wire contract of ``/v1`` (people, faces, merge, detect, verify, identify,
keys, audit, monitors, eval summary, gallery export and import) in memory, with no model: a
face is "found" in the middle of every photo, and who it is comes from the uploaded file
name (``obama*`` is Barack Obama; ``two_people*`` holds him and a stranger, and a crop of it
named ``*-face.jpg`` is the stranger alone). Like the real server it takes at most 20 files
per request and refuses a whole request holding a file that is not an image; a photo of
Barack Obama enrolled for someone else is refused (``matches_other_person``) unless the form
says ``force=true``. The browser test uses the real server; this is for UI work without
models (and ``FACEINDEX_UI_SERVER=stub`` runs the browser tests against it)::

    python tests/browser/stub_server.py --port 8765   # then open http://127.0.0.1:8765/
"""

from __future__ import annotations

import argparse
import datetime as dt
import email.parser
import email.policy
import io
import json
import mimetypes
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image

STATIC = Path(__file__).resolve().parents[2] / "src" / "faceindex" / "web" / "static"

JsonObj = dict[str, Any]


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.people: dict[int, JsonObj] = {}
        self.faces: dict[int, list[JsonObj]] = {}
        self.next_id = 1
        self.photos: dict[int, bytes] = {}
        self.stranger: int | None = None  # who the stranger of two_people.jpg was named as
        self.keys: list[JsonObj] = []
        self.audit: list[JsonObj] = []
        self.monitors: dict[int, JsonObj] = {}
        self.events: dict[int, list[JsonObj]] = {}

    def log(self, action: str, person_id: int | None = None, **details: Any) -> None:
        self.audit.insert(
            0,
            {
                "id": len(self.audit) + 1,
                "at": now(),
                "actor": "no-auth",
                "action": action,
                "person_id": person_id,
                "decision": None,
                "details": details,
            },
        )

    def person(self, person_id: int) -> JsonObj:
        if person_id not in self.people:
            raise ApiFailure(404, "not_found", f"no person {person_id}")
        p = dict(self.people[person_id])
        p["templates"] = len(self.faces[person_id])
        p["photos"] = sum(1 for f in self.faces[person_id] if f["has_photo"])
        return p


STATE = State()


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(field, filename, bytes) for each part of a multipart/form-data body."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    parts = []
    for part in message.iter_parts():
        field = part.get_param("name", header="content-disposition") or ""
        filename = part.get_filename() or ""
        payload = part.get_payload(decode=True) or b""
        parts.append((str(field), filename, bytes(payload)))
    return parts


def image_size(data: bytes) -> tuple[int, int]:
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception as exc:
        raise ApiFailure(422, "image_decode_error", "not an image") from exc


def who(filename: str) -> str | None:
    return "Barack Obama" if filename.lower().startswith("obama") else None


def find_by_name(name: str) -> int | None:
    for pid, p in STATE.people.items():
        if p["name"].lower() == name.lower():
            return pid
    return None


def identified(name: str | None, bbox: list[float]) -> JsonObj:
    pid = find_by_name(name) if name else STATE.stranger
    if pid is not None and pid not in STATE.people:
        pid = None
    if pid is None:
        return {
            "bbox": bbox,
            "person": None,
            "similarity": 0.21,
            "decision": "unknown",
            "runner_up": None,
        }
    return {
        "bbox": bbox,
        "person": {"id": pid, "name": STATE.people[pid]["name"]},
        "similarity": 0.83,
        "decision": "identified",
        "runner_up": None,
    }


class Handler(BaseHTTPRequestHandler):
    server_version = "faceindex-stub"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("stub: " + format % args + "\n")

    # -- plumbing ----------------------------------------------------------------------

    def send_json(self, status: int, body: JsonObj | bytes | None) -> None:
        if isinstance(body, bytes):  # a kept photo, or an export file
            self.send_response(status)
            export = body.startswith(b"{")
            self.send_header("Content-Type", "application/json" if export else "image/jpeg")
            if export:
                self.send_header(
                    "Content-Disposition", 'attachment; filename="faceindex-export.json"'
                )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def files(self) -> list[tuple[str, str, bytes]]:
        return parse_multipart(self.headers.get("Content-Type", ""), self.body())

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            if not url.path.startswith("/v1/"):
                if method != "GET":
                    raise ApiFailure(405, "method_not_allowed", "static files are read-only")
                self.static(url.path)
                return
            status, body = self.route(method, url.path, parse_qs(url.query))
            self.send_json(status, body)
        except ApiFailure as exc:
            self.send_json(
                exc.status, {"error": {"code": exc.code, "message": str(exc), "details": None}}
            )

    def static(self, path: str) -> None:
        rel = path.lstrip("/") or "index.html"
        file = (STATIC / rel).resolve()
        if not file.is_relative_to(STATIC) or not file.is_file():
            raise ApiFailure(404, "not_found", path)
        data = file.read_bytes()
        self.send_response(200)
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if file.suffix == ".js":
            kind = "text/javascript"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    # -- the contract ------------------------------------------------------------------

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        with STATE.lock:
            if (method, path) == ("GET", "/v1/health"):
                return 200, {"status": "ok", "version": "stub", "auth": False}
            if (method, path) == ("GET", "/v1/eval/summary"):
                return 200, {
                    "people": len(STATE.people),
                    "templates": sum(len(f) for f in STATE.faces.values()),
                    "model": "stub",
                    "gallery_model": "stub",
                    "threshold": 0.36,
                    "target_fmr": 0.0001,
                    "identify_threshold": 0.4,
                    "rule": "max",
                    "margin": 0.03,
                }
            if (method, path) == ("GET", "/v1/audit"):
                action = (query.get("action") or [""])[0]
                items = [e for e in STATE.audit if not action or e["action"] == action]
                return 200, {"items": items[: int((query.get("limit") or ["100"])[0])]}
            if path.startswith("/v1/keys"):
                return self.keys_route(method, path)
            if path.startswith("/v1/monitors"):
                return self.monitors_route(method, path, query)
            if (method, path) == ("GET", "/v1/gallery/export"):
                return 200, self.export()
            if (method, path) == ("POST", "/v1/gallery/import"):
                return 200, self.import_()
            if (method, path) == ("POST", "/v1/detect"):
                return 200, self.detect()
            if (method, path) == ("POST", "/v1/verify"):
                parts = {f: (n, d) for f, n, d in self.files()}
                same = who(parts["image_a"][0]) == who(parts["image_b"][0]) is not None
                sim = 0.78 if same else 0.12
                return 200, {"similarity": sim, "match": same, "threshold": 0.36, "model": "stub"}
            if (method, path) == ("POST", "/v1/identify"):
                return 200, self.identify()
            if path == "/v1/people":
                if method == "GET":
                    return 200, self.list_people(query)
                if method == "POST":
                    name = str(json.loads(self.body())["name"]).strip()
                    if find_by_name(name) is not None:
                        raise ApiFailure(409, "conflict", f"{name!r} exists")
                    pid = STATE.next_id
                    STATE.next_id += 1
                    STATE.people[pid] = {
                        "id": pid,
                        "name": name,
                        "external_id": None,
                        "metadata": {},
                        "created_at": now(),
                        "updated_at": now(),
                    }
                    STATE.faces[pid] = []
                    STATE.log("create", pid, name=name)
                    return 201, STATE.person(pid)
            m = re.fullmatch(r"/v1/people/(\d+)/merge", path)
            if m and method == "POST":
                return 200, self.merge(int(m[1]), json.loads(self.body())["from_person_id"])
            m = re.fullmatch(r"/v1/people/(\d+)(/faces)?(?:/(\d+)(/photo)?)?", path)
            if m:
                return self.person_route(method, int(m[1]), bool(m[2]), m[3], bool(m[4]))
        raise ApiFailure(404, "not_found", f"{method} {path}")

    def detect(self) -> JsonObj:
        _, _, data = self.files()[0]
        w, h = image_size(data)
        box = [w * 0.35, h * 0.2, w * 0.65, h * 0.6]
        quality = {"score": 0.9, "issues": []}
        face = {"bbox": box, "score": 0.95, "landmarks": [], "quality": quality}
        return {"faces": [face], "width": w, "height": h}

    def identify(self) -> JsonObj:
        _, name, data = self.files()[0]
        w, h = image_size(data)
        if name.lower().startswith("two_people"):
            faces = [
                identified("Barack Obama", [w * 0.08, h * 0.15, w * 0.3, h * 0.55]),
                identified(None, [w * 0.6, h * 0.12, w * 0.82, h * 0.5]),
            ]
        elif name.lower().startswith("camera"):
            faces = []  # Chromium's fake camera shows no face
        else:
            faces = [identified(who(name), [w * 0.35, h * 0.2, w * 0.65, h * 0.6])]
        return {"faces": faces, "width": w, "height": h}

    def list_people(self, query: dict[str, list[str]]) -> JsonObj:
        search = (query.get("search") or [""])[0].lower()
        offset = int((query.get("offset") or ["0"])[0])
        limit = int((query.get("limit") or ["50"])[0])
        ids = [pid for pid, p in STATE.people.items() if search in p["name"].lower()]
        items = [STATE.person(pid) for pid in ids[offset : offset + limit]]
        return {"items": items, "total": len(ids), "offset": offset, "limit": limit}

    def person_route(
        self, method: str, pid: int, faces: bool, template: str | None, photo: bool
    ) -> tuple[int, Any]:
        person = STATE.person(pid)
        if not faces:
            if method == "GET":
                return 200, person
            if method == "PATCH":
                name = str(json.loads(self.body())["name"]).strip()
                other = find_by_name(name)
                if other is not None and other != pid:
                    raise ApiFailure(409, "conflict", f"{name!r} exists")
                STATE.people[pid].update(name=name, updated_at=now())
                return 200, STATE.person(pid)
            if method == "DELETE":
                del STATE.people[pid]
                del STATE.faces[pid]
                STATE.log("delete", pid)
                return 204, None
        elif template is None:
            if method == "GET":
                return 200, {"items": STATE.faces[pid]}
            if method == "POST":
                return 200, self.enrol(pid, person)
        else:
            if photo:
                data = STATE.photos.get(int(template))
                if data is None:
                    raise ApiFailure(404, "not_found", "photo not kept")
                return 200, data
            if method == "DELETE":
                STATE.faces[pid] = [f for f in STATE.faces[pid] if f["id"] != int(template)]
                return 204, None
        raise ApiFailure(405, "method_not_allowed", method)

    def enrol(self, pid: int, person: JsonObj) -> JsonObj:
        parts = self.files()
        force = any(f == "force" and d.strip().lower() == b"true" for f, _, d in parts)
        files = [(n, d) for f, n, d in parts if f == "image"]
        if len(files) > 20:
            raise ApiFailure(400, "bad_request", "Too many files. Maximum number of files is 20.")
        for name, data in files:  # like the real server: one non-image fails the request
            try:
                image_size(data)
            except ApiFailure as exc:
                raise ApiFailure(422, "image_decode_error", f"{name}: not an image") from exc
        photos = []
        obama = find_by_name("Barack Obama")
        for name, data in files:
            lower = name.lower()
            if lower.startswith("two_people") and not lower.endswith("-face.jpg"):
                photos.append(
                    {
                        "source": name,
                        "status": "rejected",
                        "reasons": ["several_faces"],
                        "template_id": None,
                        "quality": None,
                        "flags": [],
                        "conflict": None,
                    }
                )
                continue
            flags = []
            if who(name) and obama is not None and obama != pid:
                if not force:
                    photos.append(
                        {
                            "source": name,
                            "status": "rejected",
                            "reasons": ["matches_other_person"],
                            "template_id": None,
                            "quality": None,
                            "flags": [],
                            "conflict": {
                                "person_id": obama,
                                "name": STATE.people[obama]["name"],
                                "similarity": 0.83,
                            },
                        }
                    )
                    continue
                flags = [f"matches_other_person:{obama}"]
            if lower.endswith("-face.jpg"):
                STATE.stranger = pid
            template_id = STATE.next_id
            STATE.next_id += 1
            w, h = image_size(data)
            STATE.photos[template_id] = data
            STATE.faces[pid].append(
                {
                    "id": template_id,
                    "quality": 0.9,
                    "source": name,
                    "created_at": now(),
                    "has_photo": True,
                    "bbox": [w * 0.35, h * 0.2, w * 0.65, h * 0.6],
                    "flags": flags,
                }
            )
            photos.append(
                {
                    "source": name,
                    "status": "accepted",
                    "reasons": [],
                    "template_id": template_id,
                    "quality": {"score": 0.9, "issues": []},
                    "flags": flags,
                    "conflict": None,
                }
            )
        STATE.log("enroll", pid, photos=len(files))
        return {"person": STATE.person(pid), "photos": photos}

    def merge(self, pid: int, from_pid: int) -> JsonObj:
        STATE.person(pid)
        STATE.person(from_pid)
        if pid == from_pid:
            raise ApiFailure(422, "invalid_input", "a person cannot be merged into themselves")
        STATE.faces[pid].extend(STATE.faces.pop(from_pid))
        del STATE.people[from_pid]
        if STATE.stranger == from_pid:
            STATE.stranger = pid
        STATE.log("merge", pid, from_person_id=from_pid)
        return STATE.person(pid)

    def export(self) -> bytes:
        people = [
            {**STATE.people[pid], "faces": [dict(f) for f in STATE.faces[pid]]}
            for pid in STATE.people
        ]
        return json.dumps({"format": "faceindex-stub-export", "people": people}).encode()

    def import_(self) -> JsonObj:
        parts = [(n, d) for f, n, d in self.files() if f == "file"]
        if not parts:
            raise ApiFailure(422, "validation_error", "multipart field 'file' is required")
        try:
            data = json.loads(parts[0][1])
            people = data["people"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ApiFailure(422, "invalid_input", "not a faceindex export") from exc
        result = {"people_created": 0, "people_merged": 0, "templates_added": 0, "skipped": 0}
        for p in people:
            pid = find_by_name(p["name"])
            if pid is None:
                pid = STATE.next_id
                STATE.next_id += 1
                STATE.people[pid] = {k: p[k] for k in p if k != "faces"} | {"id": pid}
                STATE.faces[pid] = []
                result["people_created"] += 1
            else:
                result["people_merged"] += 1
            known = {f["source"] for f in STATE.faces[pid]}
            for face in p.get("faces", []):
                if face["source"] in known:
                    result["skipped"] += 1
                    continue
                STATE.faces[pid].append({**face, "id": STATE.next_id, "has_photo": False})
                STATE.next_id += 1
                result["templates_added"] += 1
        STATE.log("import", None, **result)
        return result

    def keys_route(self, method: str, path: str) -> tuple[int, Any]:
        if (method, path) == ("GET", "/v1/keys"):
            return 200, {"items": STATE.keys}
        if (method, path) == ("POST", "/v1/keys"):
            body = json.loads(self.body())
            key = {
                "id": len(STATE.keys) + 1,
                "name": body["name"],
                "scopes": body["scopes"],
                "created_at": now(),
                "last_used_at": None,
                "revoked_at": None,
            }
            STATE.keys.append(key)
            STATE.log("key_create", None, name=body["name"])
            return 201, {"key": key, "secret": f"fi_stub_secret_{key['id']:04d}"}
        m = re.fullmatch(r"/v1/keys/(\d+)", path)
        if m and method == "DELETE":
            for key in STATE.keys:
                if key["id"] == int(m[1]):
                    key["revoked_at"] = now()
                    STATE.log("key_revoke", None, name=key["name"])
                    return 204, None
            raise ApiFailure(404, "not_found", "no such key")
        raise ApiFailure(404, "not_found", path)

    def monitors_route(
        self, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        if (method, path) == ("GET", "/v1/monitors"):
            return 200, {"items": list(STATE.monitors.values())}
        if (method, path) == ("POST", "/v1/monitors"):
            body = json.loads(self.body())
            mid = len(STATE.monitors) + 1
            STATE.monitors[mid] = {
                "id": mid,
                "source": body["source"],
                "status": "running",
                "started_at": dt.datetime.now(dt.UTC).timestamp(),
                "frames": 0,
                "events": 0,
                "error": None,
            }
            STATE.events[mid] = []
            STATE.log("monitor_start", None, source=body["source"])
            return 201, STATE.monitors[mid]
        m = re.fullmatch(r"/v1/monitors/(\d+)(/events)?", path)
        if not m or int(m[1]) not in STATE.monitors:
            raise ApiFailure(404, "not_found", path)
        mid = int(m[1])
        monitor = STATE.monitors[mid]
        if method == "DELETE":
            monitor["status"] = "stopped"
            return 204, None
        if not m[2]:
            return 200, monitor
        events = STATE.events[mid]
        if monitor["status"] == "running" and len(events) < 6:  # a face walks by, slowly
            n = len(events) + 1
            kind = "appeared" if n % 3 == 1 else "identified" if n % 3 == 2 else "left"
            person = "Barack Obama" if kind != "appeared" else None
            event = {"seq": n, "event": kind, "track_id": (n + 2) // 3, "person": person}
            if kind == "identified":
                event["similarity"] = 0.81
            events.append(event)
            monitor["frames"] += 25
            monitor["events"] = len(events)
        after = int((query.get("after") or ["0"])[0])
        items = [e for e in events if e["seq"] > after]
        return 200, {"items": items, "next": events[-1]["seq"] if events else after}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"stub API on http://127.0.0.1:{args.port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
