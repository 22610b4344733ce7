/**
 * Native element-wise kernels: unary math, broadcasting binary arithmetic, AddN and Cast.
 */
import { tf } from '../tf.js';
import type { NativeKernel } from './context.js';
import { alloc, f32, input, output } from './context.js';
import { broadcastStrides, i32, simplify, sizeOf } from './shape.js';
import type { NativeAddon } from './addon.js';

/** Unary op codes, as native/src/common.h numbers them. */
export const UnaryCode = {
  Exp: 0, Log: 1, Sqrt: 2, Rsqrt: 3, Square: 4, Sigmoid: 5, Tanh: 6, Erf: 7, Relu: 8, Neg: 9,
  Abs: 10, Relu6: 11, Reciprocal: 12, Step: 13, Log1p: 14, Softplus: 15, Elu: 16, Expm1: 17,
} as const;

/** Binary op codes, as native/src/common.h numbers them. */
export const BinaryCode = {
  Add: 0, Sub: 1, Multiply: 2, RealDiv: 3, Maximum: 4, Minimum: 5, SquaredDifference: 6,
} as const;

/**
 * out = a op b with numpy broadcasting. `out` may be `a` itself when a already has the output
 * shape (each output element then reads only its own position of a).
 */
export function nativeBinary(addon: NativeAddon, op: number, a: Float32Array, aShape: number[],
  b: Float32Array, bShape: number[], outShape: number[], out: Float32Array): void {
  if (out.length === 0) return;
  const s = simplify(outShape, [broadcastStrides(aShape, outShape), broadcastStrides(bShape, outShape)]);
  addon.binary(op, a, b, out, i32(s.shape), i32(s.strides[0]), i32(s.strides[1]));
}

function unaryKernel(name: keyof typeof UnaryCode): NativeKernel {
  const code = UnaryCode[name];
  return {
    kernelName: name,
    func: (inputs, attrs, backend, addon) => {
      const x = input(inputs, 'x');
      const xv = f32(backend, x);
      if (!x || !xv) return null;
      const y = alloc(xv.length);
      // Step's alpha is the value for x <= 0
      const alpha = name === 'Step' ? Number(attrs.alpha ?? 0) : 0;
      addon.unary(code, xv, y, alpha);
      return output(backend, x.shape.slice(), y);
    },
  };
}

function binaryKernel(name: keyof typeof BinaryCode): NativeKernel {
  const code = BinaryCode[name];
  return {
    kernelName: name,
    func: (inputs, _attrs, backend, addon) => {
      const a = input(inputs, 'a');
      const b = input(inputs, 'b');
      const av = f32(backend, a);
      const bv = f32(backend, b);
      if (!a || !b || !av || !bv) return null;
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const out = alloc(sizeOf(outShape));
      nativeBinary(addon, code, av, a.shape, bv, b.shape, outShape, out);
      return output(backend, outShape, out);
    },
  };
}

const addN: NativeKernel = {
  kernelName: 'AddN',
  func: (inputs, _attrs, backend, addon) => {
    const list = Array.isArray(inputs) ? inputs : Object.values(inputs);
    const vals = list.map((t) => f32(backend, t));
    if (list.length === 0 || vals.some((v) => v === null)) return null;
    const shape = list[0].shape.slice();
    if (list.some((t) => t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) return null;
    const out = alloc(sizeOf(shape));
    out.set(vals[0] as Float32Array);
    for (let i = 1; i < vals.length; i++) {
      nativeBinary(addon, BinaryCode.Add, out, shape, vals[i] as Float32Array, shape, shape, out);
    }
    return output(backend, shape, out);
  },
};

/**
 * Cast between float32 and int32. The cpu kernel's int32->float32 keeps the Int32Array under a
 * float32 dtype; making a real Float32Array here lets the following native kernels use it as is.
 */
const cast: NativeKernel = {
  kernelName: 'Cast',
  func: (inputs, attrs, backend) => {
    const x = input(inputs, 'x');
    if (!x) return null;
    const to = attrs.dtype as string;
    const v = backend.data.get(x.dataId).values;
    if (to === 'float32' && (x.dtype === 'int32' || x.dtype === 'bool' || x.dtype === 'float32')) {
      if (x.dtype === 'float32' && v instanceof Float32Array) return null; // identity: cpu shares data
      if (v instanceof Int32Array || v instanceof Uint8Array || v instanceof Float32Array) {
        const out = alloc(v.length);
        out.set(v);
        return output(backend, x.shape.slice(), out);
      }
    }
    if (to === 'int32' && x.dtype === 'float32' && v instanceof Float32Array) {
      // the typed-array constructor truncates like the cpu kernel's Int32Array.from, in C++
      return backend.makeTensorInfo(x.shape.slice(), 'int32', new Int32Array(v));
    }
    return null;
  },
};

/** The element-wise kernels of the native backend. */
export const elementwiseKernels: NativeKernel[] = [
  ...(Object.keys(UnaryCode) as (keyof typeof UnaryCode)[]).map(unaryKernel),
  ...(Object.keys(BinaryCode) as (keyof typeof BinaryCode)[]).map(binaryKernel),
  addN,
  cast,
];
