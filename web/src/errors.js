// Errors with the codes of PROTOCOL.md: every failure a call can have is an ActrError
// whose `code` is the wire number and `name` its name; `ActrError.from(code, message)`
// gives the subclass, and keeps a code it does not know as it is.
export const CODES = {
  UNAVAILABLE: 10001,
  TIMED_OUT: 10002,
  NOT_FOUND: 10003,
  PERMISSION_DENIED: 10004,
  INVALID_ARGUMENT: 10005,
  UNKNOWN_ROUTE: 10006,
  DECODE_FAILURE: 10008,
  NOT_IMPLEMENTED: 10009,
  INTERNAL: 10010,
  CONNECTION_NOT_READY: 10011,
  RESOURCE_EXHAUSTED: 10101,
  CANCELLED: 10102,
  UNAUTHENTICATED: 10103,
  APPLICATION_ERROR: 10104,
};
const NAMES = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v, k]));

export class ActrError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
    this.codeName = NAMES[code] || "UNKNOWN";
    this.name = this.constructor.name;
  }
  toString() {
    return `${this.codeName} (${this.code}): ${this.message}`;
  }
  static from(code, message) {
    const cls = CLASSES[code] || ActrError;
    return new cls(code, message);
  }
}

const make = (code) =>
  class extends ActrError {
    constructor(a, b) {
      // new NotFound("msg") or, through ActrError.from, new NotFound(code, "msg")
      super(code, b === undefined ? a : b);
    }
  };
export class Unavailable extends make(CODES.UNAVAILABLE) {}
export class TimedOut extends make(CODES.TIMED_OUT) {}
export class NotFound extends make(CODES.NOT_FOUND) {}
export class PermissionDenied extends make(CODES.PERMISSION_DENIED) {}
export class InvalidArgument extends make(CODES.INVALID_ARGUMENT) {}
export class UnknownRoute extends make(CODES.UNKNOWN_ROUTE) {}
export class DecodeFailure extends make(CODES.DECODE_FAILURE) {}
export class NotImplemented extends make(CODES.NOT_IMPLEMENTED) {}
export class Internal extends make(CODES.INTERNAL) {}
export class ResourceExhausted extends make(CODES.RESOURCE_EXHAUSTED) {}
export class Cancelled extends make(CODES.CANCELLED) {}
export class Unauthenticated extends make(CODES.UNAUTHENTICATED) {}
export class ApplicationError extends make(CODES.APPLICATION_ERROR) {}

const CLASSES = {
  [CODES.UNAVAILABLE]: Unavailable,
  [CODES.TIMED_OUT]: TimedOut,
  [CODES.NOT_FOUND]: NotFound,
  [CODES.PERMISSION_DENIED]: PermissionDenied,
  [CODES.INVALID_ARGUMENT]: InvalidArgument,
  [CODES.UNKNOWN_ROUTE]: UnknownRoute,
  [CODES.DECODE_FAILURE]: DecodeFailure,
  [CODES.NOT_IMPLEMENTED]: NotImplemented,
  [CODES.INTERNAL]: Internal,
  [CODES.RESOURCE_EXHAUSTED]: ResourceExhausted,
  [CODES.CANCELLED]: Cancelled,
  [CODES.UNAUTHENTICATED]: Unauthenticated,
  [CODES.APPLICATION_ERROR]: ApplicationError,
};
