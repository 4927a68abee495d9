// The signaling socket (PROTOCOL.md SIG-1..7): one WebSocket of binary
// SignalingEnvelope frames, authenticated by the credential in its query (SIG-1).
// Requests wait for the answer whose reply_for names them; relays from peers go to
// `onRelay`; a refused relay goes to `onRelayRefused` with its target.
import { ActrError, Unavailable, TimedOut } from "./errors.js";
import { ENVELOPE_VERSION, SOCKET_PATH, T, idText, toBase64 } from "./protocol.js";

const REQUEST_TIMEOUT_MS = 10000;

function envelopeId() {
  return crypto.randomUUID();
}

export class Signaling {
  constructor(url, registration, { answerOnly = false } = {}) {
    this.url = url;
    this.reg = registration;
    this.answerOnly = answerOnly;
    this.waiters = new Map();
    this.relayTargets = new Map();
    this.onRelay = () => {};
    this.onRelayRefused = () => {};
    this.onClose = () => {};
    this.ws = null;
    this.timer = null;
  }

  socketUrl() {
    const base = new URL(this.url, globalThis.location ? globalThis.location.href : undefined);
    base.protocol = base.protocol === "https:" || base.protocol === "wss:" ? "wss:" : "ws:";
    base.pathname = base.pathname.replace(/\/$/, "") + SOCKET_PATH;
    const cred = this.reg.credential;
    const q = new URLSearchParams({
      actor_id: idText(this.reg.actr_id),
      key_id: String(cred.key_id),
      claims: toBase64(cred.claims, true),
      signature: toBase64(cred.signature, true),
    });
    if (this.answerOnly) q.set("webrtc_role", "answer"); // SIG-6: peers offer to us
    base.search = q.toString();
    return base.toString();
  }

  open() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.socketUrl());
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      ws.onopen = () => {
        const secs = this.reg.signaling_heartbeat_interval_secs || 30;
        this.timer = setInterval(() => this.ping(), secs * 1000);
        resolve();
      };
      ws.onerror = () => reject(new Unavailable(`signaling socket to ${this.url} failed`));
      ws.onclose = (ev) => {
        clearInterval(this.timer);
        const err = new Unavailable(`signaling socket closed (${ev.code})`);
        for (const w of this.waiters.values()) w.reject(err);
        this.waiters.clear();
        this.onClose(ev);
      };
      ws.onmessage = (ev) => this.receive(new Uint8Array(ev.data));
    });
  }

  send(flow, body) {
    const env = { envelope_version: ENVELOPE_VERSION, envelope_id: envelopeId(), [flow]: body };
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
      throw new Unavailable("signaling socket is not open");
    }
    this.ws.send(T.SignalingEnvelope.encode(T.SignalingEnvelope.fromObject(env)).finish());
    return env.envelope_id;
  }

  /** Sends an ActrToSignaling request and returns the SignalingToActr answer. */
  request(kind, body, timeoutMs = REQUEST_TIMEOUT_MS) {
    const id = this.send("actr_to_server", {
      source: this.reg.actr_id,
      credential: this.reg.credential,
      [kind]: body,
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new TimedOut(`signaling server did not answer ${kind}`));
      }, timeoutMs);
      this.waiters.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  relay(target, kind, body) {
    const id = this.send("actr_relay", {
      source: this.reg.actr_id,
      credential: this.reg.credential,
      target,
      [kind]: body,
    });
    this.relayTargets.set(id, idText(target));
    if (this.relayTargets.size > 256) this.relayTargets.delete(this.relayTargets.keys().next().value);
  }

  ping() {
    this.request("ping", { availability: 0 }).catch(() => {});
  }

  receive(bytes) {
    let env;
    try {
      env = T.SignalingEnvelope.decode(bytes);
    } catch {
      return;
    }
    const waiter = env.reply_for ? this.waiters.get(env.reply_for) : undefined;
    if (waiter) this.waiters.delete(env.reply_for);
    if (env.actr_relay) {
      this.onRelay(env.actr_relay);
    } else if (env.envelope_error) {
      const e = ActrError.from(env.envelope_error.code, env.envelope_error.message);
      if (waiter) waiter.reject(e);
    } else if (env.server_to_actr) {
      const body = env.server_to_actr;
      if (waiter) {
        if (body.error) waiter.reject(ActrError.from(body.error.code, body.error.message));
        else waiter.resolve(body);
      } else if (body.error && this.relayTargets.has(env.reply_for)) {
        const target = this.relayTargets.get(env.reply_for);
        this.relayTargets.delete(env.reply_for);
        this.onRelayRefused(target, ActrError.from(body.error.code, body.error.message));
      }
    }
  }

  async close() {
    clearInterval(this.timer);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      try {
        await this.request(
          "unregister_request",
          { actr_id: this.reg.actr_id, reason: "closed" },
          2000
        );
      } catch {
        // closing anyway
      }
      this.ws.close(1000);
    }
  }
}
