"""The REST API on real photos: verify against a group photo (which face, or anywhere),
the wrong person refused at enrolment, an unknown face's closest candidate, and a face too
small to use said so."""

from __future__ import annotations

import io

import cv2
import numpy as np
from api_helpers import TestClient, photo, upload
from PIL import Image

from faceindex.io.image import load_image


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    return buf.getvalue()


def test_verify_against_a_group_photo(client: TestClient) -> None:
    files = [upload("obama.jpg", field="image_a"), upload("two_people.jpg", field="image_b")]
    boxes = [
        f["bbox"]
        for f in client.post("/v1/detect", files=[upload("two_people.jpg")]).json()["faces"]
    ]
    assert len(boxes) == 2

    # By default each photo's subject, its most prominent face, is compared: in this group
    # photo Obama's (face 1, nearer the centre although Biden's box is larger), and the
    # answer says which faces were compared.
    plain = client.post("/v1/verify", files=files).json()
    assert plain["match"] is True and plain["face_b"] == 1 and plain["faces_b"] == boxes
    assert plain["bbox_b"] == boxes[1] and len(plain["faces_a"]) == 1

    anywhere = client.post("/v1/verify", files=files, data={"search": "true"}).json()
    assert anywhere["match"] is True and anywhere["face_b"] == 1
    assert anywhere["bbox_b"] == boxes[1] and anywhere["bbox_b"][0] < 300  # Obama, on the left
    biden = client.post("/v1/verify", files=files, data={"face_b": "0"}).json()
    assert biden["match"] is False and biden["bbox_b"] == boxes[0]
    assert biden["similarity"] < anywhere["similarity"] == plain["similarity"]


def test_enrolment_refuses_the_wrong_person_and_identify_names_the_closest(
    client: TestClient,
) -> None:
    obama = client.post("/v1/people", json={"name": "Barack Obama"}).json()
    client.post(f"/v1/people/{obama['id']}/faces", files=[upload("obama.jpg")])
    (unknown,) = client.post("/v1/identify", files=[upload("biden.jpg")]).json()["faces"]
    assert unknown["decision"] == "unknown" and unknown["person"] is None
    assert unknown["candidate"]["name"] == "Barack Obama"
    assert unknown["candidate"]["similarity"] == unknown["similarity"] < 0.6

    r = client.post("/v1/people", data={"name": "Joe"}, files=[upload("obama2.jpg")])
    assert r.status_code == 201
    (refused,) = r.json()["photos"]
    assert refused["reasons"] == ["matches_other_person"]
    assert refused["conflict"]["person_id"] == obama["id"]
    assert refused["conflict"]["name"] == "Barack Obama"


def test_a_face_too_small_is_said_so(client: TestClient) -> None:
    rgb = load_image(photo("obama_small.jpg"))
    small = cv2.resize(rgb, (40, 30), interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 128, np.uint8)
    frame[200:230, 300:340] = small
    data = _png(frame)
    r = client.post(
        "/v1/verify",
        files=[upload("tiny.png", data, "image_a"), upload("obama.jpg", field="image_b")],
    )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "face_too_small"
    assert error["message"].startswith("tiny.png: face too small (")
    assert error["message"].endswith(" px, need 20)")
    for route in ("/v1/detect", "/v1/identify"):
        answer = client.post(route, files=[upload("tiny.png", data)]).json()
        assert answer["faces"] == [] and answer["message"].endswith(" px, need 20)"), route
    plain = client.post("/v1/detect", files=[upload("obama.jpg")]).json()
    assert plain["message"] is None
    person = client.post("/v1/people", json={"name": "Tiny"}).json()
    (photo_,) = client.post(
        f"/v1/people/{person['id']}/faces", files=[upload("tiny.png", data)]
    ).json()["photos"]
    assert photo_["reasons"] == ["face_too_small"] and "need 20" in photo_["message"]
