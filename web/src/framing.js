// DC-3: every data-channel message is an 8-byte header (msg_id u32, frag_index u16,
// total_frags u16, big-endian) and at most 65,527 bytes of the envelope.
export const HEADER = 8;
export const MAX_PAYLOAD = 65535 - HEADER;
const MAX_MESSAGE = 16 * 1024 * 1024;
const PARTIAL_TTL_MS = 30000;

export class Fragmenter {
  constructor() {
    this.next = 0;
  }
  fragment(data) {
    const total = Math.max(1, Math.ceil(data.length / MAX_PAYLOAD));
    if (total > 0xffff) throw new RangeError(`message of ${data.length} bytes is too large`);
    const id = this.next;
    this.next = (this.next + 1) >>> 0;
    const frames = [];
    for (let i = 0; i < total; i++) {
      const part = data.subarray(i * MAX_PAYLOAD, (i + 1) * MAX_PAYLOAD);
      const frame = new Uint8Array(HEADER + part.length);
      const view = new DataView(frame.buffer);
      view.setUint32(0, id);
      view.setUint16(4, i);
      view.setUint16(6, total);
      frame.set(part, HEADER);
      frames.push(frame);
    }
    return frames;
  }
}

/** Reassembles one channel's frames; drops what breaks a bound (DC-4). */
export class Reassembler {
  constructor() {
    this.partials = new Map();
  }
  feed(frame, now = Date.now()) {
    if (frame.length < HEADER) return null;
    const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const id = view.getUint32(0);
    const index = view.getUint16(4);
    const total = view.getUint16(6);
    if (total === 0 || index >= total) return null;
    const body = frame.subarray(HEADER);
    if (total === 1) return body;
    for (const [key, p] of this.partials) {
      if (now - p.started > PARTIAL_TTL_MS) this.partials.delete(key);
    }
    let p = this.partials.get(id);
    if (!p) {
      p = { total, started: now, parts: new Map(), size: 0 };
      this.partials.set(id, p);
    }
    if (p.total !== total || p.parts.has(index) || p.size + body.length > MAX_MESSAGE) {
      this.partials.delete(id);
      return null;
    }
    p.parts.set(index, body.slice());
    p.size += body.length;
    if (p.parts.size < total) return null;
    this.partials.delete(id);
    const out = new Uint8Array(p.size);
    let at = 0;
    for (let i = 0; i < total; i++) {
      out.set(p.parts.get(i), at);
      at += p.parts.get(i).length;
    }
    return out;
  }
}
