import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backward } from '../../../core/autograd.js';
import { MisconfigurationError } from '../../../core/errors.js';
import { StateDictError } from '../../../core/nn/index.js';
import { seedEverything } from '../../../core/random.js';
import { tf, type Tensor } from '../../../core/tf.js';
import { BertModel } from '../../../modules/text/bert.js';
import { parseHfTextConfig, type BertConfig } from '../../../modules/text/config.js';
import { DistilBertModel } from '../../../modules/text/distilbert.js';
import { loadHfTextEncoder } from '../../../modules/text/pretrained.js';
import { HfTokenizer, toTokenTensors } from '../../../modules/text/hfTokenizer.js';
import { RobertaModel, robertaPositionIds } from '../../../modules/text/roberta.js';
import { UnsafePickleError } from '../../../modules/weights/unpickler.js';
import { PickleWriter, writeStoredZip } from '../weights/torchZip.js';
import { WORDPIECE_JSON } from './tokenizerFixtures.js';
import { expectClose } from '../../core/nn/helpers.js';
import {
  asTensors,
  bertSpec,
  distilSpec,
  randomRaw,
  referenceBert,
  referenceDistilBert,
  robertaPositions,
  TINY_BERT,
  TINY_DISTILBERT,
  TINY_ROBERTA,
  writeModelDir,
} from './fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'lightclip-hf-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// Rows padded to different lengths; the third fills the row (no padding).
const BERT_IDS = [
  [2, 5, 6, 7, 3, 0, 0],
  [2, 8, 3, 0, 0, 0, 0],
  [2, 9, 10, 11, 12, 13, 3],
];
const ROBERTA_IDS = [
  [0, 5, 6, 7, 2, 1, 1],
  [0, 8, 2, 1, 1, 1, 1],
];
const maskOf = (ids: number[][], pad: number): number[][] => ids.map((r) => r.map((t) => (t === pad ? 0 : 1)));
const t2 = (rows: number[][]): Tensor => tf.tensor2d(rows, [rows.length, rows[0]!.length], 'int32');

describe('BertModel', () => {
  const raw = randomRaw(bertSpec(TINY_BERT), 1);

  it('has exactly transformers’ state-dict names and shapes', () => {
    const m = new BertModel(parseHfTextConfig(TINY_BERT) as BertConfig);
    const own = Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [k, v.shape]));
    expect(own).toEqual(Object.fromEntries(bertSpec(TINY_BERT)));
    m.dispose();
  });

  it('fromPretrained(dir) matches an independent composition on padded inputs', async () => {
    const dir = await writeModelDir(join(root, 'bert'), TINY_BERT, raw);
    const model = await BertModel.fromPretrained(dir);
    model.eval();
    const w = asTensors(raw);
    const mask = maskOf(BERT_IDS, 0);
    const ref = referenceBert(TINY_BERT, w, BERT_IDS, mask, BERT_IDS.map((r) => r.map((_, j) => j)));
    const out = model.forward(t2(BERT_IDS), t2(mask));
    expect(out.lastHiddenState.shape).toEqual([3, 7, 16]);
    expectClose(out.lastHiddenState, ref.last, 1e-4);
    expectClose(out.poolerOutput!, ref.pooled, 1e-4);
    model.dispose();
  });

  it('padding does not change the states of real tokens', async () => {
    const model = await BertModel.fromPretrained(join(root, 'bert'));
    model.eval();
    const padded = model.forward(t2([BERT_IDS[1]!]), t2(maskOf([BERT_IDS[1]!], 0))).lastHiddenState;
    const bare = model.forward(t2([[2, 8, 3]])).lastHiddenState;
    expectClose(tf.slice(padded, [0, 0, 0], [1, 3, 16]), bare, 1e-5);
    model.dispose();
  });

  it('loads a prefixed task checkpoint in torch .bin format (bert., gamma/beta, heads) identically', async () => {
    const extra = { 'cls.predictions.bias': { dtype: 'F32' as const, shape: [20], data: new Float32Array(20) } };
    const dir = await writeModelDir(join(root, 'bert-bin'), TINY_BERT, raw, { format: 'bin', prefix: 'bert.', gammaBeta: true, extra });
    const { model, report } = await loadHfTextEncoder(dir);
    expect(model).toBeInstanceOf(BertModel);
    expect(report.unexpectedKeys).toEqual(['cls.predictions.bias']);
    expect(report.missingKeys).toEqual([]);
    expect(report.weightFiles[0]).toMatch(/pytorch_model\.bin$/);
    const st = await BertModel.fromPretrained(join(root, 'bert'));
    model.eval();
    st.eval();
    const mask = t2(maskOf(BERT_IDS, 0));
    expectClose(model.forward(t2(BERT_IDS), mask).lastHiddenState, st.forward(t2(BERT_IDS), mask).lastHiddenState, 0);
    model.dispose();
    st.dispose();
  });

  it('is trainable: dropout only in training mode, gradients for every parameter', async () => {
    const model = await BertModel.fromPretrained(join(root, 'bert'));
    const ids = t2(BERT_IDS);
    const mask = t2(maskOf(BERT_IDS, 0));
    model.eval();
    const e1 = model.forward(ids, mask).lastHiddenState;
    const e2 = model.forward(ids, mask).lastHiddenState;
    expectClose(e1, e2, 0);
    model.train();
    seedEverything(1);
    const d1 = model.forward(ids, mask).lastHiddenState;
    const d2 = model.forward(ids, mask).lastHiddenState;
    expect(Math.max(...tf.abs(tf.sub(d1, d2)).dataSync())).toBeGreaterThan(1e-3);
    const loss = backward(model.parameters(), () => {
      const o = model.forward(ids, mask);
      return tf.add(tf.mean(tf.square(o.lastHiddenState)), tf.mean(o.poolerOutput!));
    });
    const noGrad = model.namedParameters().filter(([, p]) => p.grad === null).map(([n]) => n);
    expect(noGrad).toEqual([]);
    loss.dispose();
    model.dispose();
  });

  it('reports missing and mis-shaped weights naming the file, and a model_type mismatch', async () => {
    const partial = { ...raw };
    delete partial['encoder.layer.1.output.dense.weight'];
    const dir = await writeModelDir(join(root, 'bert-partial'), TINY_BERT, partial);
    const err = await BertModel.fromPretrained(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateDictError);
    expect((err as Error).message).toMatch(/model\.safetensors: the checkpoint lacks 1 weight\(s\) of BertModel: "encoder\.layer\.1\.output\.dense\.weight"/);
    const wide = await writeModelDir(join(root, 'bert-wide'), { ...TINY_BERT, intermediate_size: 40 }, raw);
    await expect(BertModel.fromPretrained(wide)).rejects.toThrow(/Size mismatch: "encoder\.layer\.0\.intermediate\.dense\.weight: checkpoint \[32, 16\] vs model \[40, 16\]"/);
    await expect(RobertaModel.fromPretrained(join(root, 'bert'))).rejects.toThrow(MisconfigurationError);
    await expect(RobertaModel.fromPretrained(join(root, 'bert'))).rejects.toThrow(/`model_type` is "bert", expected a roberta checkpoint/);
  });
});

describe('RobertaModel', () => {
  const raw = randomRaw(bertSpec(TINY_ROBERTA), 2);

  it('numbers positions from padding_idx + 1, as create_position_ids_from_input_ids', () => {
    const pos = robertaPositionIds(t2([[0, 5, 2, 1, 1], [0, 5, 1, 6, 2]]), 1);
    expect(Array.from(pos.dataSync())).toEqual([2, 3, 4, 1, 1, 2, 3, 1, 4, 5]);
    expect(Array.from(pos.dataSync())).toEqual(robertaPositions([[0, 5, 2, 1, 1], [0, 5, 1, 6, 2]], 1).flat());
  });

  it('fromPretrained(dir) matches an independent composition (gelu_new, offset positions)', async () => {
    const dir = await writeModelDir(join(root, 'roberta'), TINY_ROBERTA, raw);
    const model = await RobertaModel.fromPretrained(dir);
    model.eval();
    const mask = maskOf(ROBERTA_IDS, 1);
    const ref = referenceBert(TINY_ROBERTA, asTensors(raw), ROBERTA_IDS, mask, robertaPositions(ROBERTA_IDS, 1));
    const out = model.forward(t2(ROBERTA_IDS), t2(mask));
    expectClose(out.lastHiddenState, ref.last, 1e-4);
    expectClose(out.poolerOutput!, ref.pooled, 1e-4);
    expect(model.maxSequenceLength).toBe(10);
    expect(() => model.forward(t2([Array.from({ length: 11 }, () => 5)]))).toThrow(/exceeds the 10 positions/);
    model.dispose();
  });

  it('loads an MLM checkpoint without pooler (roberta. prefix, lm_head) and reports the fresh pooler', async () => {
    const noPooler = Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('pooler.')));
    const extra = { 'lm_head.dense.weight': { dtype: 'F32' as const, shape: [16, 16], data: new Float32Array(256) } };
    const dir = await writeModelDir(join(root, 'roberta-mlm'), TINY_ROBERTA, noPooler, { format: 'bin', prefix: 'roberta.', extra });
    const { model, report } = await loadHfTextEncoder(dir);
    expect(model).toBeInstanceOf(RobertaModel);
    expect(report.missingKeys.sort()).toEqual(['pooler.dense.bias', 'pooler.dense.weight']);
    expect(report.unexpectedKeys).toEqual(['lm_head.dense.weight']);
    model.eval();
    const mask = maskOf(ROBERTA_IDS, 1);
    const ref = referenceBert(TINY_ROBERTA, asTensors(raw), ROBERTA_IDS, mask, robertaPositions(ROBERTA_IDS, 1));
    expectClose(model.forward(t2(ROBERTA_IDS), t2(mask)).lastHiddenState, ref.last, 1e-4);
    model.dispose();
  });
});

describe('DistilBertModel', () => {
  const raw = randomRaw(distilSpec(TINY_DISTILBERT), 3);

  it('has transformers’ names and matches an independent composition (safetensors and .bin)', async () => {
    const m = new DistilBertModel(parseHfTextConfig(TINY_DISTILBERT) as never);
    expect(Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [k, v.shape]))).toEqual(Object.fromEntries(distilSpec(TINY_DISTILBERT)));
    m.dispose();
    const w = asTensors(raw);
    const mask = maskOf(BERT_IDS, 0);
    const ref = referenceDistilBert(TINY_DISTILBERT, w, BERT_IDS, mask);
    for (const [name, o] of [
      ['distil', {}],
      ['distil-bin', { format: 'bin' as const, prefix: 'distilbert.' }],
    ] as const) {
      const model = await DistilBertModel.fromPretrained(await writeModelDir(join(root, name), TINY_DISTILBERT, raw, o));
      model.eval();
      const out = model.forward(t2(BERT_IDS), t2(mask));
      expect(out.poolerOutput).toBeUndefined();
      expectClose(out.lastHiddenState, ref, 1e-4);
      model.dispose();
    }
  });
});

describe('end to end', () => {
  it('tokenizer output feeds BertModel, and a malicious pytorch_model.bin is refused by fromPretrained', async () => {
    const tok = HfTokenizer.fromJson(WORDPIECE_JSON);
    const batch = tok.tokenize(['A photo of cats', 'a dog'], { maxLength: 8, padding: 'longest' });
    const { inputIds, attentionMask } = toTokenTensors(batch);
    const model = await BertModel.fromPretrained(join(root, 'bert'));
    model.eval();
    const out = model.forward(inputIds, attentionMask);
    expect(out.lastHiddenState.shape).toEqual([2, 7, 16]); // [CLS] a photo of cat ##s [SEP]
    model.dispose();

    const dir = join(root, 'evil');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY_BERT));
    const pickle = new PickleWriter().proto(2).global('os', 'system').str('echo pwned').tuple1().reduce().stop().bytes();
    writeStoredZip(join(dir, 'pytorch_model.bin'), [['archive/data.pkl', pickle]]);
    const err = await BertModel.fromPretrained(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafePickleError);
    expect((err as Error).message).toContain(join(dir, 'pytorch_model.bin'));
  });
});

describe('config.json validation', () => {
  it('names the file and key of a bad value', () => {
    expect(() => parseHfTextConfig({ ...TINY_BERT, model_type: 'gpt2' }, 'x/config.json')).toThrow(/x\/config\.json: `model_type` must be one of bert, roberta/);
    expect(() => parseHfTextConfig({ ...TINY_BERT, num_attention_heads: 3 })).toThrow(/`hidden_size` \(16\) must be divisible by `num_attention_heads`/);
    expect(() => parseHfTextConfig({ ...TINY_BERT, hidden_act: 'mish' })).toThrow(/`hidden_act` must be one of/);
    expect(() => parseHfTextConfig({ ...TINY_BERT, position_embedding_type: 'relative_key' })).toThrow(/`position_embedding_type` must be "absolute"/);
    expect(() => parseHfTextConfig({ ...TINY_DISTILBERT, dropout: 1.5 })).toThrow(/`dropout` must be a probability/);
  });

  it('fills in transformers’ defaults (RoBERTa pads with 1)', () => {
    const c = parseHfTextConfig({ model_type: 'roberta' }) as BertConfig;
    expect(c).toMatchObject({ hiddenSize: 768, numHiddenLayers: 12, padTokenId: 1, layerNormEps: 1e-12, hiddenAct: 'gelu' });
  });
});
