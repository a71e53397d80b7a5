// Face-centred thumbnails of enrolled faces, shared by the people list and a person's page.

import { api } from "./api.js";
import { cropFace } from "./ui.js";

/**
 * A face-centred thumbnail of one enrolled face as an object URL (in `urls`), or null when
 * no photo is kept. With the face's box from the faces list the crop is exact at once.
 * Without one, the first crop is of the upper middle of the photo (where faces usually
 * are); when `detect` is set the face is then found with /v1/detect and `onCentred` gets
 * the better crop.
 */
export async function faceThumb(
  personId,
  face,
  { urls, signal, detect = false, size = 256, onCentred = null },
) {
  if (!face.has_photo) return null;
  const blob = await api.facePhoto(personId, face.id, { signal });
  if (!blob) return null;
  const known = Array.isArray(face.bbox) && face.bbox.length === 4 ? face.bbox : null;
  const crop = async (bbox) => {
    try {
      return urls.add(await cropFace(blob, bbox, { size }));
    } catch {
      return urls.add(blob);
    }
  };
  const first = await crop(known);
  if (known) {
    if (onCentred) onCentred(first);
  } else if (detect && onCentred) {
    api
      .detect(blob, { signal })
      .then(async (found) => {
        const area = (b) => (b[2] - b[0]) * (b[3] - b[1]);
        const biggest = [...(found.faces || [])].sort((a, b) => area(b.bbox) - area(a.bbox))[0];
        if (biggest && !signal.aborted) onCentred(await crop(biggest.bbox));
      })
      .catch(() => undefined); // the first crop stays
  }
  return first;
}

/** Run `tasks` (functions returning promises) at most `limit` at a time. */
export async function limited(tasks, limit) {
  const queue = [...tasks];
  const worker = async () => {
    while (queue.length) await queue.shift()().catch(() => undefined);
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
}

export function faceFlags(face) {
  const flags = Array.isArray(face.flags) ? face.flags.map(String) : [];
  return flags.filter((f) => /^(matches_other_person|closer_to_other_person|unlike_this_person)\b/.test(f));
}

function count(value) {
  if (Array.isArray(value)) return value.length;
  return typeof value === "number" ? value : 0;
}
