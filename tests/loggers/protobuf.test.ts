import { describe, expect, it } from 'vitest';
import { decodeFields, ProtoMessage, ProtoWriter, WireType } from '../../loggers/tensorboard/protobuf.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('ProtoWriter', () => {
  it('encodes varints as in the protobuf encoding guide', () => {
    // "08 96 01" is the guide's example for field 1 = 150.
    expect(hex(new ProtoWriter().varint(1, 150).finish())).toBe('089601');
    expect(hex(new ProtoWriter().varint(2, 0).finish())).toBe('1000');
    expect(hex(new ProtoWriter().varint(1, 2 ** 32).finish())).toBe('088080808010');
    expect(hex(new ProtoWriter().varint(1, 2 ** 53 - 1).finish())).toBe('08ffffffffffffff0f');
  });

  it('encodes negative int64 as ten bytes of two\'s complement', () => {
    expect(hex(new ProtoWriter().varint(1, -1).finish())).toBe('08ffffffffffffffffff01');
  });

  it('encodes double, float, string, bool and nested messages', () => {
    expect(hex(new ProtoWriter().double(1, 1.5).finish())).toBe('09000000000000f83f');
    expect(hex(new ProtoWriter().float(2, 1.5).finish())).toBe('150000c03f');
    expect(hex(new ProtoWriter().string(3, 'hé').finish())).toBe('1a0368c3a9');
    expect(hex(new ProtoWriter().bool(4, true).finish())).toBe('2001');
    expect(hex(new ProtoWriter().message(5, new ProtoWriter().varint(1, 1)).finish())).toBe('2a020801');
  });

  it('packs repeated doubles into one length-delimited run', () => {
    expect(hex(new ProtoWriter().packedDoubles(6, [1, -2]).finish())).toBe('3210' + '000000000000f03f' + '00000000000000c0');
  });

  it('grows its buffer for large payloads', () => {
    const big = new Uint8Array(100_000).fill(7);
    const bytes = new ProtoWriter().bytes(1, big).finish();
    expect(bytes.length).toBe(1 + 3 + 100_000);
    expect(Buffer.compare(new ProtoMessage(bytes).bytes(1)!, big)).toBe(0);
  });
});

describe('ProtoMessage / decodeFields', () => {
  it('round-trips every wire type', () => {
    const bytes = new ProtoWriter()
      .double(1, Math.PI)
      .varint(2, 123456789012)
      .string(3, 'tag')
      .float(4, 0.1)
      .packedDoubles(6, [0.5, 2.5])
      .message(7, new ProtoWriter().string(1, 'a'))
      .message(7, new ProtoWriter().string(1, 'b'))
      .varint(8, -5)
      .finish();
    const m = new ProtoMessage(bytes);
    expect(m.double(1)).toBe(Math.PI);
    expect(m.int(2)).toBe(123456789012);
    expect(m.string(3)).toBe('tag');
    expect(m.float(4)).toBe(Math.fround(0.1));
    expect(m.packedDoubles(6)).toEqual([0.5, 2.5]);
    expect(m.repeatedMessages(7).map((x) => x.string(1))).toEqual(['a', 'b']);
    expect(m.int(8)).toBe(-5);
    expect(m.has(5)).toBe(false);
    expect(m.double(5)).toBeUndefined();
    expect(decodeFields(bytes).map((f) => [f.field, f.wireType])).toEqual([
      [1, WireType.Fixed64], [2, WireType.Varint], [3, WireType.LengthDelimited], [4, WireType.Fixed32],
      [6, WireType.LengthDelimited], [7, WireType.LengthDelimited], [7, WireType.LengthDelimited], [8, WireType.Varint],
    ]);
  });

  it('rejects truncated input and wire-type mismatches', () => {
    expect(() => decodeFields(Uint8Array.of(0x0a, 0x05, 0x01))).toThrow(/truncated/);
    expect(() => decodeFields(Uint8Array.of(0x08, 0x80))).toThrow(/truncated/);
    expect(() => new ProtoMessage(Uint8Array.of(0x08, 0x01)).double(1)).toThrow(/wire type/);
  });
});
