// Rendering of stream data by content type: JSON messages pretty-printed one
// card each, text as one continuous block, anything else as a hex dump.
// Everything goes in through textContent: stream data is never markup.

import { isJSONType } from "./stream.js";

const MAX_NODES = 2000; // oldest rendered batches are dropped beyond this

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// Renderer appends batches to a container element.
export class Renderer {
  constructor(container, contentType) {
    this.box = container;
    this.json = isJSONType(contentType);
    this.text = !this.json && /^text\//i.test((contentType || "").trim());
    this.decoder = new TextDecoder("utf-8");
    this.count = 0; // messages (JSON) or batches rendered
    this.bytes = 0;
    this.box.replaceChildren();
    this.box.dataset.kind = this.json ? "json" : this.text ? "text" : "binary";
    if (this.text) {
      this.pre = el("pre", "text-body");
      this.box.append(this.pre);
    }
  }

  // add renders one batch ({offset, nextOffset, data}).
  add(batch) {
    if (this.json) this.addJSON(batch);
    else if (this.text) this.addText(batch);
    else this.addBinary(batch);
    this.trim();
  }

  addJSON({ offset, data }) {
    const text = typeof data === "string" ? data : this.decoder.decode(data);
    let values;
    try {
      values = JSON.parse(text);
      if (!Array.isArray(values)) values = [values];
    } catch (err) {
      this.box.append(el("div", "msg bad", `offset ${offset}: response is not JSON (${err.message})`));
      return;
    }
    values.forEach((v, i) => {
      const card = el("article", "msg");
      card.dataset.offset = offset;
      const head = el("header", "msg-head");
      head.append(el("code", "offset", offsetLabel(offset)), el("span", "index", i > 0 ? `+${i}` : ""));
      head.title = `read from offset ${offset}, message ${i + 1} of ${values.length} in that response`;
      card.append(head, el("pre", "json", JSON.stringify(v, null, 2)));
      this.box.append(card);
      this.count++;
    });
  }

  addText({ offset, nextOffset, data }) {
    const text = typeof data === "string" ? data : this.decoder.decode(data, { stream: true });
    const span = el("span", "chunk", text);
    span.dataset.offset = offset;
    span.title = `offset ${offset} → ${nextOffset}`;
    this.pre.append(span);
    this.count++;
  }

  addBinary({ offset, data }) {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const block = el("article", "msg hex");
    block.dataset.offset = offset;
    const head = el("header", "msg-head");
    head.append(el("code", "offset", offsetLabel(offset)), el("span", "index", `${bytes.length} bytes`));
    block.append(head, el("pre", "hexdump", hexDump(bytes, this.bytes)));
    this.box.append(block);
    this.bytes += bytes.length;
    this.count++;
  }

  // end shows how the stream ended: "closed" (EOF) or "gone" (deleted).
  end(reason, offset) {
    const text = reason === "closed" ? `stream closed at offset ${offset}` : "stream deleted";
    this.box.append(el("div", `end end-${reason}`, text));
  }

  trim() {
    const parent = this.text ? this.pre : this.box;
    while (parent.childElementCount > MAX_NODES) parent.firstElementChild.remove();
  }
}

// offsetLabel shows the offset a response was read from ("-1" is the
// stream's start).
function offsetLabel(offset) {
  return offset === "-1" ? "start" : offset;
}

// hexDump formats bytes 16 to a line: position (counted from base), hex,
// and the printable ASCII characters.
export function hexDump(bytes, base = 0) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.subarray(i, i + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${(base + i).toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  return lines.join("\n");
}
