// The line and zone editor: an SVG overlay on a camera's picture. Geometry is kept in
// fractions of the frame (0..1, x to the right, y down), as the config file holds it.
//
// A line counts `in` when a track crosses it from the right of start→end to its left, as seen
// on the image; the arrow drawn at its middle points the `in` way.

import { h, s, put } from "./dom.js";

const STEP = 0.01; // arrow keys move a point this far (Shift: 5 times)
const CLOSE_PX = 12; // a click this near a zone's first point closes it

const clamp = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * 10000) / 10000;

/** The items of a camera table: [{kind, name, points: [[x, y], ...]}]. */
export function itemsOf(table) {
  const items = [];
  const pairs = (numbers) => {
    const points = [];
    for (let i = 0; i + 1 < numbers.length; i += 2) points.push([numbers[i], numbers[i + 1]]);
    return points;
  };
  for (const [name, numbers] of Object.entries(table.lines || {})) {
    items.push({ kind: "line", name, points: pairs(numbers) });
  }
  for (const [name, numbers] of Object.entries(table.zones || {})) {
    items.push({ kind: "zone", name, points: pairs(numbers) });
  }
  return items;
}

/** `{lines, zones}` tables of the items, or throws Error with what is wrong. */
export function tablesOf(items) {
  const lines = {};
  const zones = {};
  for (const item of items) {
    const name = item.name.trim();
    const table = item.kind === "line" ? lines : zones;
    if (!name) throw new Error(`a ${item.kind} has no name`);
    if (name in table) throw new Error(`two ${item.kind}s are named ${name}`);
    table[name] = item.points.flat().map(round);
  }
  return { lines, zones };
}

export class Editor {
  /** `picture`: the element the overlay covers; `onChange()` after each edit. */
  constructor(picture, items, onChange) {
    this.picture = picture;
    this.items = items;
    this.onChange = onChange || (() => {});
    this.selected = items.length ? 0 : -1;
    this.mode = "select";
    this.draft = [];
    this.drag = null;
    this.counts = { lines: {}, zones: {} };
    this.svg = s("svg", {
      class: "overlay",
      role: "application",
      "aria-label": "Lines and zones on the picture",
      tabindex: "0",
    });
    this.svg.append(
      s(
        "defs",
        {},
        s(
          "marker",
          {
            id: "arrowhead",
            viewBox: "0 0 10 10",
            refX: "8",
            refY: "5",
            markerWidth: "6",
            markerHeight: "6",
            orient: "auto-start-reverse",
          },
          s("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }),
        ),
      ),
    );
    this.layer = s("g");
    this.svg.append(this.layer);
    this.list = h("ul", { class: "items", "aria-label": "Lines and zones" });
    this.hint = h("p", { class: "muted hint", "aria-live": "polite" });
    this.svg.addEventListener("pointerdown", (e) => this.down(e));
    this.svg.addEventListener("pointermove", (e) => this.move(e));
    this.svg.addEventListener("pointerup", (e) => this.up(e));
    this.svg.addEventListener("pointercancel", (e) => this.up(e));
    this.svg.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.render()).observe(this.svg);
    this.setMode("select");
  }

  // -- modes and items ------------------------------------------------------------------

  setMode(mode) {
    this.mode = mode;
    this.draft = [];
    this.svg.dataset.mode = mode;
    const hints = {
      select: "Drag a point to move it; Tab to a point and use the arrow keys.",
      line: "Drag on the picture from the line's start to its end.",
      zone: "Click the zone's corners; click the first one (or press Enter) to close it.",
    };
    this.hint.textContent = hints[mode];
    if (this.onMode) this.onMode(mode);
    this.render();
    this.renderList();
  }

  freeName(kind) {
    const taken = new Set(this.items.filter((i) => i.kind === kind).map((i) => i.name));
    for (let n = 1; ; n += 1) if (!taken.has(`${kind}${n}`)) return `${kind}${n}`;
  }

  add(kind, points) {
    this.items.push({ kind, name: this.freeName(kind), points });
    this.selected = this.items.length - 1;
    this.changed();
  }

  /** A line or zone in the middle of the picture, to adjust with the keyboard. */
  addDefault(kind) {
    const points =
      kind === "line"
        ? [
            [0.1, 0.5],
            [0.9, 0.5],
          ]
        : [
            [0.3, 0.3],
            [0.7, 0.3],
            [0.7, 0.7],
            [0.3, 0.7],
          ];
    this.add(kind, points);
    this.focusPoint(this.selected, 0);
  }

  remove(index) {
    this.items.splice(index, 1);
    this.selected = Math.min(this.selected, this.items.length - 1);
    this.changed();
  }

  changed() {
    this.render();
    this.renderList();
    this.onChange();
  }

  setCounts(counts) {
    this.counts = { lines: {}, zones: {}, ...(counts || {}) };
    for (const row of this.list.querySelectorAll("[data-counts]")) {
      row.textContent = this.countText(this.items[Number(row.dataset.counts)]);
    }
    this.render();
  }

  countText(item) {
    if (!item) return "";
    if (item.kind === "line") {
      const c = this.counts.lines[item.name];
      return c ? `in ${c.in} · out ${c.out}` : "in 0 · out 0";
    }
    const c = this.counts.zones[item.name];
    return c ? `entered ${c.entered ?? 0} · now ${c.occupancy ?? 0}` : "entered 0 · now 0";
  }

  // -- pointer and keys -------------------------------------------------------------------

  size() {
    const box = this.svg.getBoundingClientRect();
    return [box.width || 1, box.height || 1];
  }

  fraction(event) {
    const box = this.svg.getBoundingClientRect();
    return [
      clamp((event.clientX - box.left) / (box.width || 1)),
      clamp((event.clientY - box.top) / (box.height || 1)),
    ];
  }

  down(event) {
    if (event.button !== 0) return;
    const point = this.fraction(event);
    if (!event.target.closest("[data-point]")) this.svg.focus({ preventScroll: true }); // Enter, Escape
    const handle = event.target.closest("[data-point]");
    if (handle && this.mode === "select") {
      const item = Number(handle.dataset.item);
      this.selected = item;
      this.drag = { item, point: Number(handle.dataset.point), created: false };
    } else if (this.mode === "line") {
      this.add("line", [point, [...point]]);
      this.drag = { item: this.selected, point: 1, created: true };
    } else if (this.mode === "zone") {
      this.zoneClick(point);
      event.preventDefault();
      return;
    } else {
      const shape = event.target.closest("[data-item]");
      this.selected = shape ? Number(shape.dataset.item) : -1;
      this.render();
      this.renderList();
      return;
    }
    this.svg.setPointerCapture(event.pointerId);
    event.preventDefault();
    this.render();
  }

  move(event) {
    if (!this.drag) return;
    const item = this.items[this.drag.item];
    item.points[this.drag.point] = this.fraction(event);
    this.render();
  }

  up(event) {
    if (!this.drag) return;
    const { item, created } = this.drag;
    this.drag = null;
    if (this.svg.hasPointerCapture(event.pointerId)) this.svg.releasePointerCapture(event.pointerId);
    if (created) {
      const [a, b] = this.items[item].points;
      const [w, hgt] = this.size();
      if (Math.hypot((a[0] - b[0]) * w, (a[1] - b[1]) * hgt) < 8) {
        this.items.splice(item, 1); // a click, not a drag
        this.selected = -1;
      }
      this.setMode("select");
    }
    this.changed();
  }

  zoneClick(point) {
    const [w, hgt] = this.size();
    const first = this.draft[0];
    if (
      first &&
      this.draft.length >= 3 &&
      Math.hypot((first[0] - point[0]) * w, (first[1] - point[1]) * hgt) < CLOSE_PX
    ) {
      this.closeZone();
      return;
    }
    this.draft.push(point);
    this.render();
  }

  closeZone() {
    if (this.draft.length < 3) return;
    const points = this.draft;
    this.draft = [];
    this.add("zone", points);
    this.setMode("select");
  }

  key(event) {
    if (this.mode === "zone" && event.key === "Enter") {
      this.closeZone();
      event.preventDefault();
      return;
    }
    if (event.key === "Escape") {
      this.setMode("select");
      return;
    }
    const handle = event.target.closest && event.target.closest("[data-point]");
    if (!handle) return;
    const item = Number(handle.dataset.item);
    const index = Number(handle.dataset.point);
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (event.key in moves) {
      const [dx, dy] = moves[event.key];
      const step = event.shiftKey ? STEP * 5 : STEP;
      const p = this.items[item].points[index];
      this.items[item].points[index] = [clamp(p[0] + dx * step), clamp(p[1] + dy * step)];
      event.preventDefault();
      this.changed();
      this.focusPoint(item, index);
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      this.remove(item);
    }
  }

  focusPoint(item, index) {
    const handle = this.layer.querySelector(`[data-item="${item}"][data-point="${index}"]`);
    if (handle) handle.focus();
  }

  // -- drawing ----------------------------------------------------------------------------

  render() {
    const [w, hgt] = this.size();
    this.svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
    const px = ([x, y]) => [x * w, y * hgt];
    const nodes = [];
    this.items.forEach((item, index) => {
      const chosen = index === this.selected;
      const points = item.points.map(px);
      const group = s("g", {
        class: `${item.kind}${chosen ? " selected" : ""}`,
        "data-item": index,
        "data-name": item.name,
      });
      if (item.kind === "line") {
        const [[x1, y1], [x2, y2]] = points;
        group.append(s("line", { x1, y1, x2, y2, class: "shape" }));
        group.append(...this.arrow(points[0], points[1]));
        group.append(s("text", { x: x1 + 6, y: y1 - 6, class: "label", text: item.name }));
      } else {
        group.append(
          s("polygon", { points: points.map((p) => p.join(",")).join(" "), class: "shape" }),
        );
        const [x, y] = points[0];
        group.append(s("text", { x: x + 6, y: y + 16, class: "label", text: item.name }));
      }
      if (chosen || this.mode === "select") {
        points.forEach(([cx, cy], i) => {
          group.append(
            s(
              "circle",
              {
                cx,
                cy,
                r: chosen ? 9 : 6,
                class: "handle",
                tabindex: "0",
                role: "button",
                "data-item": index,
                "data-point": i,
                "aria-label": `${item.kind} ${item.name}, point ${i + 1}: arrow keys move it, Delete removes the ${item.kind}`,
                onfocus: () => {
                  if (this.selected !== index) {
                    this.selected = index;
                    this.markSelected();
                  }
                },
              },
              s("title", { text: `${item.name} point ${i + 1}` }),
            ),
          );
        });
      }
      nodes.push(group);
    });
    if (this.draft.length) {
      const points = this.draft.map(px);
      nodes.push(
        s("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "draft" }),
        ...points.map(([cx, cy]) => s("circle", { cx, cy, r: 5, class: "draft-point" })),
      );
    }
    const focused = document.activeElement;
    const keep =
      focused && focused.dataset && focused.dataset.point !== undefined && this.svg.contains(focused)
        ? [focused.dataset.item, focused.dataset.point]
        : null;
    put(this.layer, ...nodes);
    if (keep) this.focusPoint(keep[0], keep[1]);
  }

  /** The `in` arrow across the line's middle (towards the left of start→end) and labels. */
  arrow([x1, y1], [x2, y2]) {
    const length = Math.hypot(x2 - x1, y2 - y1) || 1;
    const [nx, ny] = [(y2 - y1) / length, -(x2 - x1) / length]; // left of start→end
    const [mx, my] = [(x1 + x2) / 2, (y1 + y2) / 2];
    const reach = 30;
    return [
      s("line", {
        x1: mx - nx * reach,
        y1: my - ny * reach,
        x2: mx + nx * reach,
        y2: my + ny * reach,
        class: "direction",
        "marker-end": "url(#arrowhead)",
      }),
      s("text", { x: mx + nx * (reach + 14), y: my + ny * (reach + 14) + 4, class: "dir", text: "in" }),
      s("text", { x: mx - nx * (reach + 14), y: my - ny * (reach + 14) + 4, class: "dir", text: "out" }),
    ];
  }

  markSelected() {
    this.render();
    for (const row of this.list.children) {
      row.classList.toggle("selected", Number(row.dataset.index) === this.selected);
    }
  }

  renderList() {
    const rows = this.items.map((item, index) =>
      h(
        "li",
        { "data-index": index, class: index === this.selected ? "selected" : "" },
        h("span", { class: "kind", text: item.kind }),
        h("input", {
          type: "text",
          value: item.name,
          "aria-label": `name of the ${item.kind}`,
          class: "item-name",
          oninput: (e) => {
            item.name = e.target.value;
            this.render();
            this.onChange();
          },
          onfocus: () => {
            this.selected = index;
            this.markSelected();
          },
        }),
        h("span", { class: "counts", "data-counts": index, text: this.countText(item) }),
        h("button", {
          type: "button",
          class: "delete",
          "aria-label": `delete the ${item.kind} ${item.name}`,
          text: "Delete",
          onclick: () => this.remove(index),
        }),
      ),
    );
    put(this.list, ...rows);
    if (!rows.length) this.list.append(h("li", { class: "muted", text: "No lines or zones yet." }));
  }
}
