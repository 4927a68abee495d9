// An actor's message types from the ServiceSpec it registered (SIG-6b): the .proto
// text of its packages parsed with protobufjs, routes read off the services
// (route `pkg.Service.Method` takes the method's input type), and JSON checked
// against the types before anything is sent: an unknown field or a value of the
// wrong kind is an InvalidArgument naming it.
import { InvalidArgument, DecodeFailure } from "./errors.js";
import { protobuf, fromBase64 } from "./protocol.js";

const WELL_KNOWN = /google\/protobuf\/(\w+)\.proto/g;

export class ServiceTypes {
  constructor(spec) {
    this.name = spec.name;
    this.fingerprint = spec.fingerprint;
    this.root = new protobuf.Root();
    for (const pkg of spec.protobufs) {
      const text = pkg.content;
      for (const m of text.matchAll(WELL_KNOWN)) {
        const common = protobuf.common.get(`google/protobuf/${m[1]}.proto`);
        if (common) this.root.addJSON(common.nested);
      }
      // Our renderer joins a package's files, each opened by its `syntax` line.
      for (const file of text.split(/^(?=syntax\s*=)/m)) {
        if (file.trim()) protobuf.parse(file, this.root, { keepCase: true });
      }
    }
    this.root.resolveAll();
    this.routes = new Map();
    const walk = (ns, prefix) => {
      for (const child of ns.nestedArray || []) {
        const full = prefix ? `${prefix}.${child.name}` : child.name;
        if (child instanceof protobuf.Service) {
          for (const m of child.methodsArray) {
            m.resolve();
            this.routes.set(`${full}.${m.name}`, {
              key: `${full}.${m.name}`,
              request: m.resolvedRequestType,
              response: m.resolvedResponseType,
            });
          }
        } else if (child.nestedArray) {
          walk(child, full);
        }
      }
    };
    walk(this.root, "");
  }

  route(key) {
    const r = this.routes.get(key);
    if (!r) {
      const known = [...this.routes.keys()].join(", ") || "none";
      throw new InvalidArgument(`no route ${key} in service spec ${this.name} (routes: ${known})`);
    }
    return r;
  }

  /** JSON (text or object) to the binary encoding of `type`. */
  encode(type, json) {
    let value = json;
    if (typeof json === "string") {
      try {
        value = JSON.parse(json || "{}");
      } catch (e) {
        throw new InvalidArgument(`the request is not JSON: ${e.message}`);
      }
    }
    check(type, value, type.name);
    return type.encode(type.fromObject(value)).finish();
  }

  decode(type, bytes) {
    try {
      return type.toObject(type.decode(bytes), {
        enums: String,
        longs: String,
        bytes: String,
        json: true,
      });
    } catch (e) {
      throw new DecodeFailure(`the answer is not a ${type.fullName.slice(1)}: ${e.message}`);
    }
  }

  /** A JSON template of `type` with every field at its zero value. */
  template(type) {
    return type.toObject(type.create(), { defaults: true, enums: String, longs: String, bytes: String, arrays: true, objects: true });
  }
}

const SCALAR = {
  double: "number", float: "number", int32: "int", uint32: "int", sint32: "int",
  fixed32: "int", sfixed32: "int", int64: "int", uint64: "int", sint64: "int",
  fixed64: "int", sfixed64: "int", bool: "boolean", string: "string", bytes: "bytes",
};

function fail(where, what) {
  throw new InvalidArgument(`${where}: ${what}`);
}

function check(type, value, where) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    fail(where, `expected a JSON object for ${type.fullName.slice(1)}`);
  }
  for (const [key, v] of Object.entries(value)) {
    const field = type.fields[key] || type.fieldsArray.find((f) => f.options && f.options.json_name === key);
    if (!field) {
      const names = type.fieldsArray.map((f) => f.name).join(", ");
      fail(`${where}.${key}`, `no such field in ${type.fullName.slice(1)} (fields: ${names})`);
    }
    field.resolve();
    if (v === null) continue;
    if (field.map) {
      if (typeof v !== "object" || Array.isArray(v)) fail(`${where}.${key}`, "expected an object (a map)");
      for (const [k, item] of Object.entries(v)) checkValue(field, item, `${where}.${key}[${k}]`);
    } else if (field.repeated) {
      if (!Array.isArray(v)) fail(`${where}.${key}`, "expected an array");
      v.forEach((item, i) => checkValue(field, item, `${where}.${key}[${i}]`));
    } else {
      checkValue(field, v, `${where}.${key}`);
    }
  }
}

function checkValue(field, v, where) {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    if (rt.fullName.startsWith(".google.protobuf.")) return; // their JSON forms vary
    check(rt, v, where);
  } else if (rt instanceof protobuf.Enum) {
    if (typeof v === "string" ? !(v in rt.values) : !Number.isInteger(v)) {
      fail(where, `expected one of ${Object.keys(rt.values).join(", ")}`);
    }
  } else {
    const kind = SCALAR[field.type];
    const ok =
      (kind === "string" && typeof v === "string") ||
      (kind === "boolean" && typeof v === "boolean") ||
      (kind === "number" && (typeof v === "number" || /^-?[\d.eE+-]+$|^(NaN|-?Infinity)$/.test(v))) ||
      (kind === "int" && (Number.isInteger(v) || (typeof v === "string" && /^-?\d+$/.test(v)))) ||
      (kind === "bytes" && typeof v === "string" && isBase64(v));
    if (!ok) fail(where, `expected ${kind === "bytes" ? "base64" : kind === "int" ? "an integer" : kind}`);
  }
}

function isBase64(text) {
  try {
    fromBase64(text);
    return true;
  } catch {
    return false;
  }
}
