// actr in the browser: register with a credential the application's backend got,
// discover actors, call and tell them over WebRTC data channels, with typed errors.
//
//   import { connect } from "/sdk/actr.js";
//   const client = await connect({ url: location.origin, registration });   // base64 RegisterOk
//   const reply = await client.callJson("acme:echo:1.0", "echo.v1.Echo.Say", { text: "hi" });
//
// `registration` is the RegisterOk the backend's POST /ais/register answered (the
// `success` of its RegisterResponse), as base64 or bytes: the realm secret stays on
// the backend; the page holds only this actor's short-lived credential.
import { ActrError, InvalidArgument, NotImplemented, TimedOut, Unavailable } from "./errors.js";
import { Direction, T, idText, parseId, parseType, typeText, fromBase64 } from "./protocol.js";
import { Peers } from "./peer.js";
import { Signaling } from "./signaling.js";
import { ServiceTypes } from "./types.js";

export * from "./errors.js";
export { ServiceTypes } from "./types.js";
export { idText, parseId, parseType, typeText } from "./protocol.js";

function readRegistration(registration) {
  let bytes = registration;
  if (typeof registration === "string") bytes = fromBase64(registration.trim());
  if (!(bytes instanceof Uint8Array)) return registration; // already decoded
  try {
    return T.RegisterOk.decode(bytes); // proto2 `required` fields are checked here
  } catch (e) {
    throw new InvalidArgument(`registration is not an encoded RegisterOk: ${e.message}`);
  }
}

function iceConfig(reg, iceServers) {
  const servers = [...iceServers];
  if (reg.turn_urls && reg.turn_urls.length && reg.turn_credential) {
    servers.push({
      urls: reg.turn_urls,
      username: reg.turn_credential.username,
      credential: reg.turn_credential.password,
    });
  }
  return { iceServers: servers };
}

export class Client {
  constructor(url, reg, options) {
    this.url = url;
    this.registration = reg;
    this.actrId = reg.actr_id;
    this.id = idText(reg.actr_id);
    this.connectTimeoutMs = options.connectTimeoutMs ?? 15000;
    this.signaling = new Signaling(url, reg, { answerOnly: options.answerOnly });
    this.peers = new Peers(this.signaling, iceConfig(reg, options.iceServers || []), (peer, label, bytes) =>
      this.receive(peer, label, bytes)
    );
    this.peers.onClosed = (peer, err) => this.peerClosed(peer, err);
    this.pending = new Map();
    this.routes = new Map();
    this.specs = new Map();
  }

  /** Live actor types: [{type, name, fingerprint}]. */
  async discover({ manufacturer = "", limit = 0 } = {}) {
    const answer = await this.signaling.request("discovery_request", { manufacturer, limit });
    const resp = answer.discovery_response;
    if (resp.error) throw ActrError.from(resp.error.code, resp.error.message);
    return resp.success.entries.map((e) => ({
      type: typeText(e.actr_type),
      name: e.name || "",
      fingerprint: e.service_fingerprint || "",
    }));
  }

  /** The ServiceSpec named `name` (an actor type's name) that a live actor registered. */
  async serviceSpec(name) {
    const answer = await this.signaling.request("get_service_spec_request", { name });
    const resp = answer.get_service_spec_response;
    if (resp.error) throw ActrError.from(resp.error.code, resp.error.message);
    return resp.success;
  }

  /** The message types and routes of `target` (a type or an id), from its spec. */
  async types(target) {
    const name = String(target).includes("@") ? parseId(target).type.name : parseType(target).name;
    if (!this.specs.has(name)) this.specs.set(name, new ServiceTypes(await this.serviceSpec(name)));
    return this.specs.get(name);
  }

  async resolve(target) {
    if (typeof target !== "string") return target;
    if (target.includes("@")) return parseId(target);
    const cached = this.routes.get(target);
    if (cached) return cached;
    const answer = await this.signaling.request("route_candidates_request", {
      target_type: parseType(target),
      criteria: { candidate_count: 1 },
    });
    const resp = answer.route_candidates_response;
    if (resp.error) throw ActrError.from(resp.error.code, resp.error.message);
    const [first] = resp.success.candidates;
    if (!first) throw ActrError.from(10003, `no live actor of type ${target}`);
    this.routes.set(target, first);
    return first;
  }

  /** Calls `route` of `target` with raw bytes; resolves to the answer's bytes. */
  async call(target, route, payload = new Uint8Array(), { timeoutMs = 10000, signal = false } = {}) {
    const deadline = Date.now() + timeoutMs;
    const remote = await this.resolve(target);
    const peer = await this.peers.get(remote, Math.max(1, deadline - Date.now()));
    const requestId = crypto.randomUUID().replace(/-/g, "");
    const answer = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new TimedOut(`no answer from ${peer.key} to ${route} within ${timeoutMs} ms`));
      }, Math.max(1, deadline - Date.now()));
      this.pending.set(requestId, { peer: peer.key, resolve, reject, timer });
    });
    const env = T.RpcEnvelope.fromObject({
      route_key: route,
      payload,
      direction: Direction.REQUEST,
      request_id: requestId,
      timeout_ms: Math.max(1, deadline - Date.now()),
    });
    await peer.send(signal ? "RPC_SIGNAL" : "RPC_RELIABLE", T.RpcEnvelope.encode(env).finish());
    return answer;
  }

  /** A one-way message: no answer, no error from the handler. */
  async tell(target, route, payload = new Uint8Array()) {
    const remote = await this.resolve(target);
    const peer = await this.peers.get(remote, this.connectTimeoutMs);
    const env = T.RpcEnvelope.fromObject({
      route_key: route,
      payload,
      direction: Direction.TELL,
      request_id: crypto.randomUUID().replace(/-/g, ""),
      timeout_ms: 0,
    });
    await peer.send("RPC_RELIABLE", T.RpcEnvelope.encode(env).finish());
  }

  /** Calls with JSON, encoded with the types of the target's service spec. */
  async callJson(target, route, request = {}, options = {}) {
    const types = await this.types(target);
    const r = types.route(route);
    const bytes = await this.call(target, route, types.encode(r.request, request), options);
    return types.decode(r.response, bytes);
  }

  async tellJson(target, route, message = {}) {
    const types = await this.types(target);
    await this.tell(target, route, types.encode(types.route(route).request, message));
  }

  receive(peer, label, bytes) {
    if (label !== "RPC_RELIABLE" && label !== "RPC_SIGNAL") return; // no streams here yet
    let env;
    try {
      env = T.RpcEnvelope.decode(bytes);
    } catch {
      return;
    }
    if (env.direction === Direction.RESPONSE) {
      const waiter = this.pending.get(env.request_id);
      if (!waiter || waiter.peer !== peer.key) return; // ENV-2: only the asked peer answers
      this.pending.delete(env.request_id);
      clearTimeout(waiter.timer);
      if (env.error) waiter.reject(ActrError.from(env.error.code, env.error.message));
      else waiter.resolve(env.payload || new Uint8Array());
    } else if (env.direction === Direction.REQUEST) {
      // A browser hosts no actor (as a client node): it answers every request so.
      const err = new NotImplemented("a browser client hosts no actor");
      const reply = T.RpcEnvelope.fromObject({
        route_key: env.route_key,
        error: { code: err.code, message: err.message },
        direction: Direction.RESPONSE,
        request_id: env.request_id,
        timeout_ms: 0,
      });
      peer.send(label, T.RpcEnvelope.encode(reply).finish()).catch(() => {});
    }
  }

  peerClosed(peer, err) {
    for (const [id, w] of this.pending) {
      if (w.peer === peer.key) {
        this.pending.delete(id);
        clearTimeout(w.timer);
        w.reject(err instanceof ActrError ? err : new Unavailable(String(err))); // DC-6
      }
    }
    for (const [type, id] of this.routes) if (idText(id) === peer.key) this.routes.delete(type);
  }

  async close() {
    this.peers.closeAll();
    await this.signaling.close();
  }
}

/**
 * Opens the signaling socket with `registration` and returns a Client.
 * options: answerOnly (this side never offers: SIG-6 `webrtc_role=answer`),
 * iceServers (RTCIceServer list, beside the TURN servers of the registration),
 * connectTimeoutMs.
 */
export async function connect({ url, registration, ...options }) {
  if (!url) throw new InvalidArgument("connect needs the signaling server's url");
  const reg = readRegistration(registration);
  const client = new Client(url, reg, options);
  await client.signaling.open();
  return client;
}
