/**
 * A restricted unpickler: it interprets the pickle opcodes that `torch.save` emits
 * (protocol 2, plus the protocol 4/5 framing and short forms) and never runs code. Every
 * class or function a pickle names (`GLOBAL`, `STACK_GLOBAL`, `INST`) is looked up in an
 * allowlist supplied by the caller **when the opcode is read**, before anything could be
 * applied to it; an unknown name (`os.system`, `builtins.eval`, `posix.system`,
 * `subprocess.Popen`) stops the load with an {@link UnsafePickleError} that names it.
 *
 * Values are plain JavaScript: None → null, bool, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes → Uint8Array, list → array, tuple → {@link PickleTuple},
 * dict → {@link PickleDict}; allowlisted callables build whatever their handler returns.
 */

import {
  PickleDict,
  PickleFormatError,
  PickleGlobal,
  PickleObject,
  PickleTuple,
  type PickleKey,
  type PickleValue,
  type UnpicklerHooks,
} from './types.js';

export {
  PickleDict,
  PickleFormatError,
  PickleGlobal,
  PickleObject,
  PickleTuple,
  UnsafePickleError,
  type PickleKey,
  type PickleValue,
  type UnpicklerHooks,
} from './types.js';

/** Result of {@link unpickle}: the value and the offset just past its STOP opcode. */
export interface UnpickleResult {
  value: PickleValue;
  end: number;
}

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

function isKey(v: PickleValue): v is PickleKey {
  return v === null || ['string', 'number', 'bigint', 'boolean'].includes(typeof v) || v instanceof PickleTuple;
}

/**
 * Unpickles one object from `bytes` starting at `offset` (legacy torch files hold several
 * pickles back to back), resolving globals and persistent ids through `hooks`.
 * @param source file name used in error messages.
 * @throws UnsafePickleError for a global outside the allowlist (from `hooks.findGlobal`).
 * @throws PickleFormatError for truncated input or an unsupported opcode.
 */
export function unpickle(bytes: Uint8Array, hooks: UnpicklerHooks, source: string, offset = 0): UnpickleResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (detail: string): never => {
    throw new PickleFormatError(source, detail);
  };
  let pos = offset;
  let stack: StackItem[] = [];
  const metastack: StackItem[][] = [];
  const memo = new Map<number, PickleValue>();
  const utf8 = new TextDecoder('utf-8', { fatal: true });

  const need = (n: number): number => {
    if (pos + n > bytes.length) fail(`truncated at byte ${pos} (needed ${n} more)`);
    const at = pos;
    pos += n;
    return at;
  };
  const take = (n: number): Uint8Array => bytes.subarray(need(n), pos);
  const u8 = (): number => bytes[need(1)]!;
  const u16 = (): number => view.getUint16(need(2), true);
  const u32 = (): number => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(bytes.length)) fail(`length ${v} at byte ${pos - 8} exceeds the input`);
    return Number(v);
  };
  const line = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) fail(`unterminated text line at byte ${pos}`);
    const s = Buffer.from(bytes.subarray(pos, nl)).toString('latin1');
    pos = nl + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined) return fail(`stack underflow at byte ${pos - 1}`);
    if (v === MARK) return fail(`unexpected MARK on the stack at byte ${pos - 1}`);
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail(`empty stack at byte ${pos - 1}`);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) return fail(`no MARK to pop to at byte ${pos - 1}`);
    stack = prev;
    if (items.some((v) => v === MARK)) fail(`nested MARK at byte ${pos - 1}`);
    return items as PickleValue[];
  };
  const asCallable = (v: PickleValue, op: string): PickleGlobal => {
    if (v instanceof PickleGlobal) return v;
    return fail(`${op} applied to a non-callable value at byte ${pos - 1}`);
  };
  const argsOf = (v: PickleValue, op: string): readonly PickleValue[] => {
    if (v instanceof PickleTuple) return v.items;
    return fail(`${op} expects an argument tuple at byte ${pos - 1}`);
  };
  const setItems = (target: PickleValue, kv: PickleValue[]): void => {
    if (!(target instanceof PickleDict)) fail(`SETITEM(S) on a non-dict at byte ${pos - 1}`);
    for (let i = 0; i + 1 < kv.length; i += 2) {
      const k = kv[i]!;
      if (!isKey(k)) fail(`unhashable dict key at byte ${pos - 1}`);
      (target as PickleDict).entries.set(k as PickleKey, kv[i + 1]!);
    }
  };
  const append = (target: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(target)) fail(`APPEND(S) on a non-list at byte ${pos - 1}`);
    (target as PickleValue[]).push(...items);
  };
  const memoGet = (i: number): PickleValue => {
    const v = memo.get(i);
    if (v === undefined) return fail(`memo key ${i} not found at byte ${pos - 1}`);
    return v;
  };
  const persistent = (pid: PickleValue): PickleValue => {
    if (!hooks.persistentLoad) return fail('persistent id found but no persistent_load hook');
    return hooks.persistentLoad(pid);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail(`unsupported pickle protocol ${bytes[pos - 1]}`);
        break;
      case 0x95: // FRAME: a length hint only
        need(8);
        break;
      case 0x2e: // STOP
        return { value: pop(), end: pos };
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(decodeLong(take(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(need(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(take(u64())));
        break;
      case 0x54: // BINSTRING (Python 2 str, read as latin-1)
        stack.push(Buffer.from(take(view.getInt32(need(4), true))).toString('latin1'));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(Buffer.from(take(u8())).toString('latin1'));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(take(u8())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(Uint8Array.from(take(u64())));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new PickleDict());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PickleTuple([]));
        break;
      case 0x74: {
        // TUPLE. (popMark replaces `stack`, so it must run before `stack.push` is looked up.)
        const items = popMark();
        stack.push(new PickleTuple(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(new PickleTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(new PickleTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PickleTuple([pop(), b, c]));
        break;
      }
      case 0x6c: {
        // LIST
        const items = popMark();
        stack.push(items);
        break;
      }
      case 0x64: {
        // DICT
        const d = new PickleDict();
        const kv = popMark();
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT (text index)
        memo.set(Number.parseInt(line(), 10), top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET (text index)
        stack.push(memoGet(Number.parseInt(line(), 10)));
        break;
      case 0x30: // POP
        if (stack.length > 0) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x63: {
        // GLOBAL: resolved (or refused) right here, before any REDUCE could apply it.
        const module = line();
        const name = line();
        stack.push(hooks.findGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail(`STACK_GLOBAL needs two strings at byte ${pos - 1}`);
        stack.push(hooks.findGlobal(module as string, name as string));
        break;
      }
      case 0x69: {
        // INST: a global followed by a call with the marked arguments.
        const module = line();
        const name = line();
        const cls = hooks.findGlobal(module, name);
        const args = popMark();
        stack.push(cls.call(args));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        if (items.length === 0) fail(`OBJ without a class at byte ${pos - 1}`);
        stack.push(asCallable(items[0]!, 'OBJ').call(items.slice(1)));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = argsOf(pop(), 'REDUCE');
        stack.push(asCallable(pop(), 'REDUCE').call(args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args), treated as a call of the allowlisted class.
        const args = argsOf(pop(), 'NEWOBJ');
        stack.push(asCallable(pop(), 'NEWOBJ').call(args));
        break;
      }
      case 0x62: {
        // BUILD: plain dicts take a state (an OrderedDict's `_metadata` attribute); objects
        // built by allowlisted callables take one only if their class defines setState.
        const state = pop();
        const obj = top();
        if (obj instanceof PickleDict) obj.state = state;
        else if (obj instanceof PickleObject) {
          try {
            obj.setState(state);
          } catch (err) {
            fail(`${(err as Error).message} at byte ${pos - 1}`);
          }
        } else fail(`BUILD on a ${describe(obj)} at byte ${pos - 1}; only dict state is supported`);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x50: // PERSID
        stack.push(persistent(line()));
        break;
      default:
        fail(`unsupported opcode 0x${op.toString(16).padStart(2, '0')} at byte ${pos - 1}`);
    }
  }
}

/** Two's-complement little-endian integer (LONG1/LONG4), as a number when it is safe. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function describe(v: PickleValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'object') return v.constructor.name;
  return typeof v;
}
