/**
 * CatLIP's vocabulary: CoreNet's pickled `{"n<offset>": count}` dict, ordered by count (high
 * first). CoreNet keeps `list(vocab.keys())[:vocab_size]`; a key's index is its position.
 *
 * Reading goes through the restricted unpickler (only `collections.OrderedDict` may be named);
 * writing emits a protocol-2 pickle of a plain dict that Python's `pickle.load` reads back in
 * the same order. Building counts, over a caption corpus, the captions in which each synset is
 * mined (a caption's target is a set, so a synset counts once per caption), ties broken by
 * first appearance.
 */

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { PickleDict, PickleGlobal, UnsafePickleError, unpickle, type PickleValue } from '../weights/unpickler.js';
import type { SynsetMiner, Vocabulary } from './labeler.js';

const KEY_RE = /^n\d+$/;

export class SynsetVocabulary implements Vocabulary {
  private readonly index = new Map<string, number>();

  constructor(
    /** Keys in index order. */
    readonly keys: readonly string[],
    /** Counts, parallel to keys (NaN when unknown). */
    readonly counts: readonly number[] = keys.map(() => NaN),
  ) {
    keys.forEach((k, i) => {
      if (this.index.has(k)) throw new Error(`vocabulary: key ${k} appears twice`);
      this.index.set(k, i);
    });
  }

  get size(): number {
    return this.keys.length;
  }

  indexOf(key: string): number | undefined {
    return this.index.get(key);
  }

  /** The first `size` entries (CoreNet's `vocab_size`). */
  truncate(size: number): SynsetVocabulary {
    if (size > this.keys.length) {
      throw new Error(`vocabulary has ${this.keys.length} synsets, fewer than the requested size ${size}`);
    }
    return new SynsetVocabulary(this.keys.slice(0, size), this.counts.slice(0, size));
  }

  /** Reads a CoreNet vocabulary pickle; `size` keeps the first entries like CoreNet's loader. */
  static read(file: string, size?: number): SynsetVocabulary {
    const bytes = readFileSync(file);
    const hooks = {
      findGlobal(module: string, name: string): PickleGlobal {
        if (module === 'collections' && name === 'OrderedDict') return new PickleGlobal(module, name, () => new PickleDict());
        throw new UnsafePickleError(file, `${module}.${name}`, ['collections.OrderedDict']);
      },
    };
    const { value } = unpickle(bytes, hooks, file);
    if (!(value instanceof PickleDict)) {
      throw new Error(`${file}: expected a pickled dict {"n<offset>": count} (CoreNet's vocabulary), got ${describe(value)}`);
    }
    const keys: string[] = [];
    const counts: number[] = [];
    for (const [k, v] of value.entries) {
      if (typeof k !== 'string' || !KEY_RE.test(k)) {
        throw new Error(`${file}: vocabulary key ${JSON.stringify(k)} is not a WordNet noun key like "n2084071"`);
      }
      keys.push(k);
      counts.push(typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : NaN);
    }
    const vocab = new SynsetVocabulary(keys, counts);
    return size === undefined ? vocab : vocab.truncate(size);
  }

  /** Writes CoreNet's format (protocol 2), atomically. */
  write(file: string): void {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, encodeVocabPickle(this.keys, this.counts.map((c) => (Number.isFinite(c) ? c : 0))));
    renameSync(tmp, file);
  }

  /** Counts mined synsets over captions (once per caption), ordered by count then first appearance. */
  static build(captions: Iterable<string>, miner: SynsetMiner, size?: number): SynsetVocabulary {
    const counts = new Map<string, number>(); // Map keeps first-appearance order
    for (const caption of captions) {
      for (const k of new Set(miner.keys(caption))) counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const order = [...counts.entries()].map(([k, c], i) => ({ k, c, i }));
    order.sort((a, b) => b.c - a.c || a.i - b.i);
    const kept = size === undefined ? order : order.slice(0, size);
    return new SynsetVocabulary(
      kept.map((e) => e.k),
      kept.map((e) => e.c),
    );
  }
}

function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? v.constructor.name : typeof v;
}

/** A protocol-2 pickle of a str → int dict, entries in order (SETITEMS batches of 1000 as Python writes). */
export function encodeVocabPickle(keys: readonly string[], counts: readonly number[]): Uint8Array {
  const chunks: Buffer[] = [Buffer.from([0x80, 2, 0x7d])]; // PROTO 2, EMPTY_DICT
  for (let start = 0; start < keys.length; start += 1000) {
    chunks.push(Buffer.from([0x28])); // MARK
    for (let i = start; i < Math.min(keys.length, start + 1000); i++) {
      const k = Buffer.from(keys[i]!, 'utf8');
      const head = Buffer.alloc(5);
      head[0] = 0x58; // BINUNICODE
      head.writeUInt32LE(k.length, 1);
      chunks.push(head, k, encodeInt(counts[i]!));
    }
    chunks.push(Buffer.from([0x75])); // SETITEMS
  }
  chunks.push(Buffer.from([0x2e])); // STOP
  return Buffer.concat(chunks);
}

function encodeInt(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new Error(`vocabulary count ${n} is not a non-negative integer`);
  if (n < 256) return Buffer.from([0x4b, n]); // BININT1
  if (n < 65536) return Buffer.from([0x4d, n & 0xff, n >> 8]); // BININT2
  if (n < 2 ** 31) {
    const b = Buffer.alloc(5);
    b[0] = 0x4a; // BININT
    b.writeInt32LE(n, 1);
    return b;
  }
  // LONG1: little-endian two's complement
  const bytes: number[] = [];
  let v = BigInt(n);
  while (v > 0n) {
    bytes.push(Number(v & 0xffn));
    v >>= 8n;
  }
  if (bytes[bytes.length - 1]! & 0x80) bytes.push(0);
  return Buffer.from([0x8a, bytes.length, ...bytes]);
}
