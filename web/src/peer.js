// WebRTC peer connections to actors (DC-1..5), set up over signaling relays with
// the roles the server assigns (SIG-6): this side asks (role_negotiation), the
// server tells both sides who offers; the offerer opens the four labelled channels.
// Candidates are gathered before a description is sent (aiortc takes them in the
// SDP and does not trickle); later ones are relayed as ice_candidate.
import { Unavailable, TimedOut, ActrError } from "./errors.js";
import { Fragmenter, Reassembler } from "./framing.js";
import { CHANNELS, SdpType, idText } from "./protocol.js";

const HIGH_WATER = 1024 * 1024; // DC-5
const LOW_WATER = 256 * 1024;
const GATHER_MS = 3000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") {
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      }
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_MS); // a slow STUN/TURN server: send what we have, trickle the rest
  });
}

class Peer {
  constructor(remote, config, onMessage, onClosed) {
    this.remote = remote;
    this.key = idText(remote);
    this.pc = new RTCPeerConnection(config);
    this.channels = new Map();
    this.fragmenters = new Map();
    this.reassemblers = new Map();
    this.sentDescription = false;
    this.pendingCandidates = [];
    this.exchange = 0;
    this.closed = false;
    this.onMessage = onMessage;
    this.onClosed = onClosed;
    this.ready = new Promise((resolve, reject) => {
      this.markReady = resolve;
      this.markFailed = reject;
    });
    this.ready.catch(() => {});
    this.pc.ondatachannel = (ev) => this.adopt(ev.channel);
    this.pc.onconnectionstatechange = () => {
      if (["failed", "closed"].includes(this.pc.connectionState)) {
        this.fail(new Unavailable(`connection to ${this.key} ${this.pc.connectionState}`));
      }
    };
  }

  openChannels() {
    for (const [label, spec] of Object.entries(CHANNELS)) {
      this.adopt(this.pc.createDataChannel(label, spec.options));
    }
  }

  adopt(channel) {
    if (!(channel.label in CHANNELS) || this.channels.get(channel.label) === channel) return;
    channel.binaryType = "arraybuffer";
    channel.bufferedAmountLowThreshold = LOW_WATER;
    this.channels.set(channel.label, channel);
    this.fragmenters.set(channel.label, new Fragmenter());
    const reassembler = new Reassembler();
    channel.onmessage = (ev) => {
      const whole = reassembler.feed(new Uint8Array(ev.data));
      if (whole) this.onMessage(this, channel.label, whole);
    };
    const opened = () => {
      if (channel.label === "RPC_RELIABLE") this.markReady(this);
    };
    if (channel.readyState === "open") opened();
    channel.onopen = opened;
    channel.onclose = () => {
      if (channel.label === "RPC_RELIABLE") this.fail(new Unavailable(`channel to ${this.key} closed`));
    };
  }

  async send(label, bytes) {
    let channel = this.channels.get(label);
    if (!channel) {
      this.adopt(this.pc.createDataChannel(label, CHANNELS[label].options)); // DC-1: on first send
      channel = this.channels.get(label);
    }
    if (channel.readyState !== "open") {
      await new Promise((resolve, reject) => {
        channel.addEventListener("open", resolve, { once: true });
        channel.addEventListener("close", () => reject(new Unavailable("channel closed")), { once: true });
      });
    }
    for (const frame of this.fragmenters.get(label).fragment(bytes)) {
      while (channel.bufferedAmount > HIGH_WATER) {
        await new Promise((resolve) =>
          channel.addEventListener("bufferedamountlow", resolve, { once: true })
        );
      }
      channel.send(frame);
    }
  }

  fail(err) {
    if (this.closed) return;
    this.closed = true;
    this.markFailed(err);
    try {
      this.pc.close();
    } catch {
      // already closed
    }
    this.onClosed(this, err);
  }
}

export class Peers {
  constructor(signaling, config, onMessage) {
    this.signaling = signaling;
    this.config = config;
    this.onMessage = onMessage;
    this.onClosed = () => {};
    this.peers = new Map();
    signaling.onRelay = (relay) => this.relay(relay).catch(() => {});
    signaling.onRelayRefused = (target, err) => {
      const peer = this.peers.get(target);
      if (peer) peer.fail(err);
    };
  }

  /** A ready connection to `remote` (an ActrId), set up if there is none. */
  async get(remote, timeoutMs) {
    const key = idText(remote);
    let peer = this.peers.get(key);
    if (!peer) {
      peer = this.add(remote);
      const me = this.signaling.reg.actr_id;
      this.signaling.relay(remote, "role_negotiation", {
        from: me,
        to: remote,
        realm_id: me.realm.realm_id,
      });
    }
    let timer;
    const deadline = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new TimedOut(`connection to ${key} not ready`)), timeoutMs);
    });
    try {
      return await Promise.race([peer.ready, deadline]);
    } catch (e) {
      peer.fail(e); // a set-up that missed its deadline is dropped: the next call starts anew
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  add(remote) {
    const peer = new Peer(remote, this.config, this.onMessage, (p, err) => {
      if (this.peers.get(p.key) === p) this.peers.delete(p.key);
      this.onClosed(p, err);
    });
    this.peers.set(peer.key, peer);
    peer.pc.onicecandidate = (ev) => {
      if (ev.candidate && ev.candidate.candidate && peer.sentDescription) {
        this.signaling.relay(peer.remote, "ice_candidate", {
          candidate: ev.candidate.candidate,
          sdp_mid: ev.candidate.sdpMid || "",
          sdp_mline_index: ev.candidate.sdpMLineIndex || 0,
          username_fragment: ev.candidate.usernameFragment || "",
        });
      }
    };
    return peer;
  }

  async relay(relay) {
    const me = idText(this.signaling.reg.actr_id);
    const source = idText(relay.source);
    if (relay.role_assignment) {
      const remote = source === me ? relay.target : relay.source;
      const peer = this.peers.get(idText(remote));
      // A browser hosts no actor: it takes only the connections it asked for.
      if (peer && relay.role_assignment.is_offerer) await this.offer(peer);
      return;
    }
    const peer = this.peers.get(source);
    if (!peer) return;
    try {
      if (relay.session_description) await this.description(peer, relay.session_description);
      else if (relay.ice_candidate) await this.candidate(peer, relay.ice_candidate);
    } catch (e) {
      peer.fail(e instanceof ActrError ? e : new Unavailable(`set-up with ${peer.key} failed: ${e}`));
    }
  }

  async offer(peer) {
    peer.openChannels();
    await peer.pc.setLocalDescription(await peer.pc.createOffer());
    await gathered(peer.pc);
    peer.exchange += 1;
    this.signaling.relay(peer.remote, "session_description", {
      type: SdpType.OFFER,
      sdp: peer.pc.localDescription.sdp,
      sdp_exchange_id: String(peer.exchange),
    });
    peer.sentDescription = true;
  }

  async description(peer, desc) {
    if (desc.type === SdpType.ANSWER) {
      if (peer.pc.signalingState !== "have-local-offer") return;
      await peer.pc.setRemoteDescription({ type: "answer", sdp: desc.sdp });
    } else {
      await peer.pc.setRemoteDescription({ type: "offer", sdp: desc.sdp });
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      await gathered(peer.pc);
      this.signaling.relay(peer.remote, "session_description", {
        type: SdpType.ANSWER,
        sdp: peer.pc.localDescription.sdp,
        sdp_exchange_id: desc.sdp_exchange_id || "",
      });
      peer.sentDescription = true;
    }
    for (const c of peer.pendingCandidates.splice(0)) await this.candidate(peer, c);
  }

  async candidate(peer, c) {
    if (!peer.pc.remoteDescription) {
      peer.pendingCandidates.push(c);
      return;
    }
    const text = c.candidate.startsWith("candidate:") ? c.candidate : `candidate:${c.candidate}`;
    await peer.pc.addIceCandidate({
      candidate: text,
      sdpMid: c.sdp_mid || "0",
      sdpMLineIndex: c.sdp_mline_index || 0,
    });
  }

  closeAll() {
    for (const peer of [...this.peers.values()]) peer.fail(new Unavailable("client closed"));
  }
}
