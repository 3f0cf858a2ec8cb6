/*
 * herald-client — the TypeScript client SDK for Herald. This entry runs in
 * browsers and Node alike; "herald-client/node" adds the TCP connector and
 * token minting.
 */
export { HeraldClient, type ClientOptions, type SendOptions } from "./client.js";
export { ErrorCode, type ErrorName, HeraldError, errName, isHeraldError, strerror } from "./errors.js";
export { webSocket, type Connection, type Connector, type TransportSink } from "./transport.js";
export { defaultStore, type KeyStore, localStorageStore, memoryStore } from "./store.js";
export { SyncKey } from "./synckey.js";
export { decodeFrame, encodeFrame, type DecodeLimits } from "./codec.js";
export { FrameType, MsgFlag, MsgKind, PROTOCOL_VERSION, type WireFrame, type WireMsg } from "./protocol.js";
export type * from "./types.js";
