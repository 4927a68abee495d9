// The wire messages (PROTOCOL.md), from the repository's own .proto files: the
// bundler embeds their text, so the SDK and the runtime cannot drift apart
// (scripts/web.sh --check fails when the bundle is older than proto/).
import protobuf from "protobufjs";
import actrProto from "../../proto/actr/protocol/actr.proto";
import signalingProto from "../../proto/actr/protocol/signaling.proto";
import webrtcProto from "../../proto/actr/protocol/webrtc.proto";

export { protobuf };

export const root = new protobuf.Root();
for (const text of [actrProto, webrtcProto, signalingProto]) {
  // keepCase: the .proto field names, as the runtime's JSON and the wire docs use them.
  protobuf.parse(text, root, { keepCase: true });
}
root.resolveAll();

const t = (name) => root.lookupType(name);
export const T = {
  ActrId: t("actr.ActrId"),
  ActrType: t("actr.ActrType"),
  RpcEnvelope: t("actr.RpcEnvelope"),
  DataStream: t("actr.DataStream"),
  RegisterOk: t("actr.RegisterOk"),
  RegisterResponse: t("actr.RegisterResponse"),
  SignalingEnvelope: t("signaling.SignalingEnvelope"),
  ActrToSignaling: t("signaling.ActrToSignaling"),
  ActrRelay: t("signaling.ActrRelay"),
};
export const Direction = { REQUEST: 1, RESPONSE: 2, TELL: 3 };
export const SdpType = { OFFER: 0, ANSWER: 1, RENEGOTIATION_OFFER: 2, ICE_RESTART_OFFER: 3 };
export const ENVELOPE_VERSION = 2;
export const SOCKET_PATH = "/signaling/ws";

// DC-1: one channel per payload type, labelled with the enum name.
export const CHANNELS = {
  RPC_RELIABLE: { type: 0, options: { ordered: true } },
  RPC_SIGNAL: { type: 1, options: { ordered: true } },
  STREAM_RELIABLE: { type: 2, options: { ordered: true } },
  STREAM_LATENCY_FIRST: { type: 3, options: { ordered: false, maxRetransmits: 3 } },
};

/** ActrId text form (ID-1): `<serial hex>@<realm>/<manufacturer>:<name>:<version>`. */
export function idText(id) {
  const serial = protobuf.util.Long.fromValue(id.serial_number).toString(16);
  return `${serial}@${id.realm.realm_id}/${typeText(id.type)}`;
}

export function typeText(type) {
  return `${type.manufacturer}:${type.name}:${type.version}`;
}

export function parseType(text) {
  const parts = String(text).split(":");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new TypeError(`not an actor type (manufacturer:name:version): ${text}`);
  }
  const [manufacturer, name, version] = parts;
  return { manufacturer, name, version };
}

export function parseId(text) {
  const m = /^([0-9a-f]+)@(\d+)\/(.+)$/.exec(String(text));
  if (!m) throw new TypeError(`not an actor id (serial@realm/type): ${text}`);
  return {
    realm: { realm_id: Number(m[2]) },
    serial_number: protobuf.util.Long.fromString(m[1], true, 16),
    type: parseType(m[3]),
  };
}

export function fromBase64(text) {
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(bytes, urlsafe = false) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  const b64 = btoa(bin);
  return urlsafe ? b64.replace(/\+/g, "-").replace(/\//g, "_") : b64;
}
