import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bfloat16ToFloat32, float16ToFloat32, writeSafetensors } from '../../../core/checkpoint/safetensors.js';
import { readTorchCheckpoint, TorchCheckpointError } from '../../../modules/weights/torchCheckpoint.js';
import { readWeights, readWeightsAsTensors, detectWeightsFormat } from '../../../modules/weights/readWeights.js';
import { PickleFormatError, UnsafePickleError } from '../../../modules/weights/unpickler.js';
import { ZipFormatError } from '../../../modules/weights/zip.js';
import { PickleWriter, statePickle, writeStoredZip, writeTorchZip, type TorchTensorSpec } from './torchZip.js';

const dir = mkdtempSync(join(tmpdir(), 'lightclip-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hasPython = spawnSync('python3', ['-c', 'import pickle, zipfile'], { stdio: 'ignore' }).status === 0;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

describe('readTorchCheckpoint: zip format', () => {
  // w is a [2, 3] matrix; wT a transposed view of the same storage; tail a sliced view (offset 3).
  const w = Float32Array.from([1, 2, 3, 4, 5, 6]);
  const half = Uint16Array.from([0x3c00, 0xc000, 0x3555]); // 1, -2, ~0.333
  const bf = Uint16Array.from([0x3f80, 0x4049]); // 1, 3.140625
  const specs: Record<string, TorchTensorSpec> = {
    w: { storageType: 'FloatStorage', key: '0', storage: bytesOf(w), storageNumel: 6, shape: [2, 3], parameter: true },
    wT: { storageType: 'FloatStorage', key: '0', storageNumel: 6, shape: [3, 2], stride: [1, 3] },
    tail: { storageType: 'FloatStorage', key: '0', storageNumel: 6, shape: [3], offset: 3 },
    col: { storageType: 'FloatStorage', key: '0', storageNumel: 6, shape: [2], stride: [3], offset: 1 },
    half: { storageType: 'HalfStorage', key: '1', storage: bytesOf(half), storageNumel: 3, shape: [3] },
    bf: { storageType: 'BFloat16Storage', key: '2', storage: bytesOf(bf), storageNumel: 2, shape: [2] },
    dbl: { storageType: 'DoubleStorage', key: '3', storage: bytesOf(Float64Array.from([0.1, -2.5])), storageNumel: 2, shape: [2, 1] },
    long: { storageType: 'LongStorage', key: '4', storage: bytesOf(BigInt64Array.from([1n, -2n, 1n << 40n])), storageNumel: 3, shape: [3] },
    int: { storageType: 'IntStorage', key: '5', storage: bytesOf(Int32Array.from([7, -8])), storageNumel: 2, shape: [2] },
    byte: { storageType: 'ByteStorage', key: '6', storage: Uint8Array.from([0, 255, 9]), storageNumel: 3, shape: [3] },
    mask: { storageType: 'BoolStorage', key: '7', storage: Uint8Array.from([1, 0]), storageNumel: 2, shape: [2] },
    scalar: { storageType: 'FloatStorage', key: '8', storage: bytesOf(Float32Array.from([42])), storageNumel: 1, shape: [] },
  };
  const file = join(dir, 'mixed.bin');
  writeTorchZip(file, specs);

  it('reads every dtype, with shapes, in pickle order', async () => {
    const sd = await readTorchCheckpoint(file);
    expect(Object.keys(sd)).toEqual(Object.keys(specs));
    expect(sd.w).toMatchObject({ dtype: 'F32', shape: [2, 3] });
    expect(Array.from(sd.w!.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(float16ToFloat32(sd.half!.data as Uint16Array))).toEqual([1, -2, Math.fround(0.333251953125)]);
    expect(Array.from(bfloat16ToFloat32(sd.bf!.data as Uint16Array))).toEqual([1, 3.140625]);
    expect(sd.dbl).toMatchObject({ dtype: 'F64', shape: [2, 1] });
    expect(Array.from(sd.dbl!.data as Float64Array)).toEqual([0.1, -2.5]);
    expect(sd.long!.dtype).toBe('I64');
    expect(Array.from(sd.long!.data as BigInt64Array)).toEqual([1n, -2n, 1n << 40n]);
    expect(Array.from(sd.int!.data as Int32Array)).toEqual([7, -8]);
    expect(sd.byte!.dtype).toBe('U8');
    expect(Array.from(sd.byte!.data as Uint8Array)).toEqual([0, 255, 9]);
    expect(sd.mask).toMatchObject({ dtype: 'BOOL', shape: [2] });
    expect(Array.from(sd.mask!.data as Uint8Array)).toEqual([1, 0]);
    expect(sd.scalar).toMatchObject({ shape: [] });
    expect(Array.from(sd.scalar!.data as Float32Array)).toEqual([42]);
  });

  it('copies strided views into contiguous row-major arrays, honouring storage offsets', async () => {
    const sd = await readTorchCheckpoint(file);
    expect(sd.wT!.shape).toEqual([3, 2]);
    expect(Array.from(sd.wT!.data as Float32Array)).toEqual([1, 4, 2, 5, 3, 6]);
    expect(Array.from(sd.tail!.data as Float32Array)).toEqual([4, 5, 6]);
    expect(Array.from(sd.col!.data as Float32Array)).toEqual([2, 5]);
  });

  it('converts to tfjs tensors through readWeightsAsTensors, refusing int64 values beyond int32', async () => {
    expect(await detectWeightsFormat(file)).toBe('torch');
    await expect(readWeightsAsTensors(file)).rejects.toThrow(/I64 value 1099511627776 .*does not fit in int32/);
    const small = join(dir, 'small.bin');
    writeTorchZip(small, { half: specs.half!, int: specs.int!, wT: { ...specs.wT!, storage: bytesOf(w) } });
    const t = await readWeightsAsTensors(small);
    expect(t.half!.dtype).toBe('float32');
    expect(Array.from(t.half!.dataSync())).toEqual([1, -2, Math.fround(0.333251953125)]);
    expect(t.int!.dtype).toBe('int32');
    expect(Array.from(t.wT!.dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
    Object.values(t).forEach((x) => x.dispose());
  });

  it('reports a view that runs past its storage, and a missing storage entry', async () => {
    const bad = join(dir, 'bad-view.bin');
    writeTorchZip(bad, { x: { storageType: 'FloatStorage', key: '0', storage: bytesOf(Float32Array.from([1, 2])), storageNumel: 2, shape: [3] } });
    await expect(readTorchCheckpoint(bad)).rejects.toThrow(/tensor `x` \[3\] reaches element 2 of a 2-element storage/);
    const missing = join(dir, 'missing-storage.bin');
    writeStoredZip(missing, [['archive/data.pkl', statePickle({ x: { storageType: 'FloatStorage', key: '9', storageNumel: 1, shape: [1] } })]]);
    await expect(readTorchCheckpoint(missing)).rejects.toThrow(TorchCheckpointError);
    await expect(readTorchCheckpoint(missing)).rejects.toThrow(/archive\/data\/9/);
  });

  it('rejects files that are neither zip nor pickle, and truncated pickles', async () => {
    const junk = join(dir, 'junk.bin');
    writeFileSync(junk, 'hello world');
    await expect(readTorchCheckpoint(junk)).rejects.toThrow(/neither a torch zip archive nor a legacy torch pickle/);
    const trunc = join(dir, 'trunc.bin');
    const pkl = statePickle({ x: { storageType: 'FloatStorage', key: '0', storage: bytesOf(Float32Array.from([1])), storageNumel: 1, shape: [1] } });
    writeStoredZip(trunc, [['archive/data.pkl', pkl.subarray(0, pkl.length - 5)]]);
    await expect(readTorchCheckpoint(trunc)).rejects.toThrow(PickleFormatError);
  });

  it('reports malformed tensor arguments and a truncated zip by file', async () => {
    const p = new PickleWriter().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark().str('not a storage').int(0).tuple().reduce().stop();
    const bad = join(dir, 'bad-args.bin');
    writeStoredZip(bad, [['archive/data.pkl', p.bytes()]]);
    await expect(readTorchCheckpoint(bad)).rejects.toThrow(new RegExp(`Cannot read PyTorch checkpoint ${bad}: _rebuild_tensor: the first argument is not a storage`));
    const cut = join(dir, 'cut.bin');
    writeFileSync(cut, readFileSync(file).subarray(0, 200));
    await expect(readTorchCheckpoint(cut)).rejects.toThrow(ZipFormatError);
  });

  it.skipIf(!hasPython)("writes zips Python's zipfile accepts (CRCs and offsets are right)", () => {
    const out = execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip(), sorted(z.namelist()))', file]).toString();
    expect(out).toContain('None');
    expect(out).toContain('archive/data.pkl');
  });
});

/** A legacy (pre-1.6, non-zip) torch.save stream, written by hand. */
function legacyFile(): Uint8Array {
  const magic = new PickleWriter().proto(2).int(0x1950a86a20f9469cfc6cn).stop().bytes();
  const protocol = new PickleWriter().proto(2).int(1001).stop().bytes();
  const sysInfo = new PickleWriter().proto(2).emptyDict().mark().str('protocol_version').int(1001).str('little_endian').bool(true).setitems().stop().bytes();
  const p = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
  // 'a' is the whole root storage; 'b' a legacy view (view_metadata = (key, offset 2, size 2)).
  p.str('a').global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', 'FloatStorage').str('140').str('cpu').int(4).none().tuple().binpersid();
  p.int(0).int(4).tuple1().int(1).tuple1().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  p.str('b').global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().str('storage').global('torch', 'FloatStorage').str('140').str('cpu').int(4);
  p.str('140v').int(2).int(2).tuple3().tuple().binpersid();
  p.int(0).int(2).tuple1().int(1).tuple1().bool(false).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce();
  p.setitems().stop();
  const keys = new PickleWriter().proto(2).emptyList().mark().str('140').appends().stop().bytes();
  const count = Buffer.alloc(8);
  count.writeBigInt64LE(4n);
  const data = bytesOf(Float32Array.from([10, 20, 30, 40]));
  return Buffer.concat([magic, protocol, sysInfo, p.bytes(), keys, count, data]);
}

describe('readTorchCheckpoint: legacy format', () => {
  it('reads the magic/protocol/sys-info/object/keys/storages sequence, with views', async () => {
    const file = join(dir, 'legacy.pt');
    writeFileSync(file, legacyFile());
    const sd = await readTorchCheckpoint(file);
    expect(Array.from(sd.a!.data as Float32Array)).toEqual([10, 20, 30, 40]);
    expect(Array.from(sd.b!.data as Float32Array)).toEqual([30, 40]);
  });
});

describe('readTorchCheckpoint: refusing code execution', () => {
  const marker = join(dir, 'PWNED');

  /** A zip whose data.pkl is `pickle`, with a harmless tensor storage beside it. */
  function evilZip(name: string, pickle: Uint8Array): string {
    const file = join(dir, name);
    writeStoredZip(file, [
      ['archive/data.pkl', pickle],
      ['archive/data/0', bytesOf(Float32Array.from([1]))],
    ]);
    return file;
  }

  it('refuses GLOBAL os.system, naming the file and the global, and runs nothing', async () => {
    const p = new PickleWriter().proto(2).global('os', 'system').str(`touch ${marker}`).tuple1().reduce().stop();
    const file = evilZip('os-system.bin', p.bytes());
    const err = await readTorchCheckpoint(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as UnsafePickleError).global).toBe('os.system');
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain('`os.system`');
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses builtins.eval inside an otherwise valid state dict', async () => {
    const p = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    p.str('x').global('builtins', 'eval').str('__import__("os").system("true")').tuple1().reduce().setitems().stop();
    await expect(readTorchCheckpoint(evilZip('eval.bin', p.bytes()))).rejects.toThrow(/`builtins\.eval`/);
  });

  it('refuses posix.system reached through STACK_GLOBAL (protocol 4)', async () => {
    const p = new PickleWriter().proto(4).str('posix', true).memoize().str('system', true).memoize().stackGlobal().memoize();
    p.str(`touch ${marker}`, true).tuple1().reduce().stop();
    const err = await readTorchCheckpoint(evilZip('posix.bin', p.bytes())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as Error).message).toMatch(/`posix\.system`.*Nothing was executed/s);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a forbidden class in the storage-type slot and via INST', async () => {
    const p = new PickleWriter().proto(2).mark().str('storage').global('subprocess', 'Popen').str('0').str('cpu').int(1).tuple().binpersid().stop();
    await expect(readTorchCheckpoint(evilZip('popen.bin', p.bytes()))).rejects.toThrow(/`subprocess\.Popen`/);
    const inst = new PickleWriter().proto(2).mark().str(`touch ${marker}`).raw(0x69, ...Buffer.from('os\nsystem\n')).stop();
    await expect(readTorchCheckpoint(evilZip('inst.bin', inst.bytes()))).rejects.toThrow(/`os\.system`/);
    expect(existsSync(marker)).toBe(false);
  });

  it.skipIf(!hasPython)("refuses a payload built by CPython's own pickler (__reduce__ → os.system)", async () => {
    const pkl = join(dir, 'py-evil.pkl');
    const script = [
      'import os, pickle, sys',
      'class Evil:',
      '    def __reduce__(self): return (os.system, ("touch " + sys.argv[2],))',
      'open(sys.argv[1], "wb").write(pickle.dumps({"w": Evil()}, protocol=2))',
    ].join('\n');
    execFileSync('python3', ['-c', script, pkl, marker]);
    const err = await readTorchCheckpoint(evilZip('py-evil.bin', readFileSync(pkl))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as UnsafePickleError).global).toMatch(/^(posix|os|nt)\.system$/);
    expect(existsSync(marker)).toBe(false);
  });
});

describe.skipIf(!hasPython)('readTorchCheckpoint: pickles written by CPython (stub torch modules)', () => {
  // CPython's pickler with a persistent_id hook, exactly as torch.save drives it, over stub
  // classes registered as torch.FloatStorage / torch._utils._rebuild_tensor_v2 etc.
  const script = String.raw`
import collections, io, pickle, struct, sys, types, zipfile
torch = types.ModuleType('torch'); utils = types.ModuleType('torch._utils')
sys.modules['torch'] = torch; sys.modules['torch._utils'] = utils; torch._utils = utils
def stub(mod, name, obj):
    obj.__module__ = mod.__name__; obj.__qualname__ = name; obj.__name__ = name; setattr(mod, name, obj); return obj
Float = stub(torch, 'FloatStorage', type('FloatStorage', (), {}))
Long = stub(torch, 'LongStorage', type('LongStorage', (), {}))
Half = stub(torch, 'HalfStorage', type('HalfStorage', (), {}))
v2 = stub(utils, '_rebuild_tensor_v2', lambda *a: None)
param = stub(utils, '_rebuild_parameter', lambda *a: None)
class Storage:
    def __init__(self, cls, key, raw, numel): self.cls, self.key, self.raw, self.numel = cls, key, raw, numel
class T:
    def __init__(self, s, off, size, stride): self.a = (s, off, size, stride, False, collections.OrderedDict())
    def __reduce_ex__(self, p): return (v2, self.a)
class P:
    def __init__(self, t): self.t = t
    def __reduce_ex__(self, p): return (param, (self.t, True, collections.OrderedDict()))
class Pickler(pickle.Pickler):
    def persistent_id(self, o):
        return ('storage', o.cls, o.key, 'cpu', o.numel) if isinstance(o, Storage) else None
s0 = Storage(Float, '0', struct.pack('<6f', *[0.5 * i for i in range(6)]), 6)
s1 = Storage(Long, '1', struct.pack('<3q', 3, -4, 2**40), 3)
s2 = Storage(Half, '2', struct.pack('<2e', 1.5, -0.25), 2)
sd = collections.OrderedDict()
sd['enc.weight'] = P(T(s0, 0, (2, 3), (3, 1)))
sd['enc.weight_t'] = T(s0, 0, (3, 2), (1, 3))
sd['ids'] = T(s1, 0, (3,), (1,))
sd['half'] = T(s2, 0, (2,), (1,))
sd['nested'] = {'step': 7, 'inner': [T(s0, 4, (2,), (1,))]}
sd._metadata = collections.OrderedDict([('', {'version': 1})])
buf = io.BytesIO(); Pickler(buf, protocol=2).dump(sd)
method = zipfile.ZIP_DEFLATED if sys.argv[2] == 'deflate' else zipfile.ZIP_STORED
with zipfile.ZipFile(sys.argv[1], 'w', method) as z:
    for name, data in [('data.pkl', buf.getvalue()), ('byteorder', b'little'), ('data/0', s0.raw), ('data/1', s1.raw), ('data/2', s2.raw)]:
        with z.open('archive/' + name, 'w', force_zip64=(sys.argv[2] == 'zip64')) as f: f.write(data)
`;

  it.each(['stored', 'deflate', 'zip64'])('reads a %s archive', async (mode) => {
    const file = join(dir, `py-${mode}.bin`);
    execFileSync('python3', ['-c', script, file, mode]);
    const sd = await readWeights(file);
    expect(Object.keys(sd)).toEqual(['enc.weight', 'enc.weight_t', 'ids', 'half', 'nested.inner.0']);
    expect(sd['enc.weight']!.shape).toEqual([2, 3]);
    expect(Array.from(sd['enc.weight']!.data as Float32Array)).toEqual([0, 0.5, 1, 1.5, 2, 2.5]);
    expect(Array.from(sd['enc.weight_t']!.data as Float32Array)).toEqual([0, 1.5, 0.5, 2, 1, 2.5]);
    expect(Array.from(sd.ids!.data as BigInt64Array)).toEqual([3n, -4n, 1n << 40n]);
    expect(Array.from(float16ToFloat32(sd.half!.data as Uint16Array))).toEqual([1.5, -0.25]);
    expect(Array.from(sd['nested.inner.0']!.data as Float32Array)).toEqual([2, 2.5]);
  });
});

describe('readWeights', () => {
  it('reads safetensors through the same entry point', async () => {
    const file = join(dir, 'w.safetensors');
    await writeSafetensors(file, { a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, 2]) } });
    expect(await detectWeightsFormat(file)).toBe('safetensors');
    const sd = await readWeights(file);
    expect(Array.from(sd.a!.data as Float32Array)).toEqual([1, 2]);
  });
});
