// A camera's live picture: the MJPEG stream, or snapshots polled once a second when the
// stream cannot be had (too many viewers, an older service).

import { liveUrl, snapshotUrl } from "./api.js";
import { h } from "./dom.js";

/** An <img> showing camera `name` live; call `.stop()` on it when leaving the page. */
export function livePicture(name, className) {
  const img = h("img", { class: className || "picture", alt: `live picture of ${name}` });
  let failures = 0;
  let timer = null;
  let stopped = false;
  const poll = () => {
    if (stopped) return;
    img.src = snapshotUrl(name);
    timer = setTimeout(poll, 1000);
  };
  img.addEventListener("error", () => {
    if (stopped || timer) return;
    failures += 1;
    if (failures >= 3) {
      poll();
    } else {
      setTimeout(() => {
        if (!stopped) img.src = `${liveUrl(name)}?retry=${Date.now()}`;
      }, 1000 * failures);
    }
  });
  img.src = liveUrl(name);
  img.stop = () => {
    stopped = true;
    clearTimeout(timer);
    img.removeAttribute("src"); // closes the MJPEG connection
  };
  return img;
}
