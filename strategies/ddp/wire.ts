/**
 * The wire format of the process group's messages: `[header, payload]`, where the header
 * says what the message is (data of a collective, goodbye, abort, timeout report), who
 * sent it, the collective's sequence number and a tag (step/piece within the collective).
 */

/** Message kinds. */
export const Kind = { Data: 0, Bye: 1, Abort: 2, Report: 3 } as const;

/** Collective codes carried by data messages (to detect ranks calling different collectives). */
export const Op = { AllReduce: 1, Broadcast: 2, BroadcastJson: 3, AllGather: 4, AllGatherJson: 5, Barrier: 6, SendRecv: 7 } as const;
/** Names of the `Op` codes, for error messages. */
export const OP_NAMES = ['control', 'allReduce', 'broadcast(Float32Array)', 'broadcast(JSON)', 'allGather(Float32Array)', 'allGather(JSON)', 'barrier', 'sendRecv'];

/** The fixed-size header of every message. */
export interface Header {
  kind: number;
  op: number;
  src: number;
  seq: number;
  tag: number;
  /** Element count of the whole array the message belongs to (to detect length mismatches). */
  total: number;
}

/** A received message. */
export interface Incoming {
  header: Header;
  payload: Buffer;
}

const HEADER_BYTES = 24;
/** The payload of control messages. */
export const EMPTY = Buffer.alloc(0);

/** The 24-byte header: kind u8, op u8, 2 unused, src u32, seq u32, tag u32, total f64 (little-endian). */
export function encodeHeader(h: Header): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  b.writeUInt8(h.kind, 0);
  b.writeUInt8(h.op, 1);
  b.writeUInt32LE(h.src, 4);
  b.writeUInt32LE(h.seq, 8);
  b.writeUInt32LE(h.tag, 12);
  b.writeDoubleLE(h.total, 16);
  return b;
}

/** Parses a header; null when the frame is not one. */
export function decodeHeader(b: Buffer): Header | null {
  if (b.length !== HEADER_BYTES) return null;
  return { kind: b.readUInt8(0), op: b.readUInt8(1), src: b.readUInt32LE(4), seq: b.readUInt32LE(8), tag: b.readUInt32LE(12), total: b.readDoubleLE(16) };
}

/** `tcp://host:port`, with brackets around IPv6 hosts. */
export function tcpEndpoint(host: string, port: number | '*'): string {
  return host.includes(':') ? `tcp://[${host}]:${port}` : `tcp://${host}:${port}`;
}
